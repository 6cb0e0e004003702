/*
 * The page side of digitbench's tfjs backend. WebDriver calls window.digitbench.call(name, args)
 * through executeAsyncScript; every call resolves to {ok: true, value} or {ok: false, error},
 * never rejects. All timings are performance.now() inside the page.
 */
"use strict";

const SOFTWARE_RENDERERS = /swiftshader|llvmpipe|softpipe|software|basic render/i;

const state = {model: null, outputNames: null, input: null, executeAsync: false};

function webglInfo() {
  const canvas = document.createElement("canvas");
  const gl = canvas.getContext("webgl2") || canvas.getContext("webgl");
  if (!gl) return {renderer: null, vendor: null, maxTextureSize: null, software: null};
  const ext = gl.getExtension("WEBGL_debug_renderer_info");
  const renderer = String(gl.getParameter(ext ? ext.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
  const vendor = String(gl.getParameter(ext ? ext.UNMASKED_VENDOR_WEBGL : gl.VENDOR));
  const info = {renderer, vendor, maxTextureSize: gl.getParameter(gl.MAX_TEXTURE_SIZE),
                software: SOFTWARE_RENDERERS.test(renderer)};
  const lose = gl.getExtension("WEBGL_lose_context");
  if (lose) lose.loseContext();
  return info;
}

/**
 * TF.js 4.22's wasm Cast copies values into the bool output (0.3 -> 0, 256 -> 0) where TensorFlow
 * gives x != 0 (tfjs issue #2590, closed unfixed). OD API graphs cast box areas to bool before
 * NMS, so on wasm they would find nothing. Other casts keep the library's own kernel.
 */
function patchWasmCastToBool() {
  const original = tf.getKernel("Cast", "wasm");
  if (!original) return null;
  tf.unregisterKernel("Cast", "wasm");
  tf.registerKernel({...original, kernelFunc: (args) => {
    if (args.attrs.dtype !== "bool" || args.inputs.x.dtype === "bool") return original.kernelFunc(args);
    const {inputs: {x}, backend} = args;
    const out = backend.makeOutput(x.shape, "bool");
    const from = backend.typedArrayFromHeap(x);
    const to = backend.typedArrayFromHeap(out);
    for (let i = 0; i < from.length; i++) to[i] = from[i] !== 0 ? 1 : 0;
    return out;
  }});
  return "Cast to bool (tfjs #2590)";
}

async function setup({backend, maxTextureSize, wasmPath}) {
  const start = performance.now();
  if (maxTextureSize) tf.env().set("WEBGL_MAX_TEXTURE_SIZE", maxTextureSize);
  if (backend === "wasm") tf.wasm.setWasmPaths(wasmPath);
  if (backend === "webgl") tf.env().set("SOFTWARE_WEBGL_ENABLED", true);
  const ok = await tf.setBackend(backend);
  if (!ok) throw new Error(`TF.js backend '${backend}' could not be initialised in this browser`);
  await tf.ready();
  const patches = backend === "wasm" ? [patchWasmCastToBool()].filter(Boolean) : [];
  const readyAt = performance.now();
  const info = {backend: tf.getBackend(), tfjsVersion: tf.version.tfjs, initMs: readyAt - start, readyAt, patches,
                webgl: webglInfo(), userAgent: navigator.userAgent, wasmSimd: null, wasmThreads: null,
                crossOriginIsolated: self.crossOriginIsolated === true};
  if (backend === "wasm") {
    info.wasmSimd = await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT");
    info.wasmThreads = await tf.env().getAsync("WASM_HAS_MULTITHREAD_SUPPORT");
    info.wasmThreadCount = tf.wasm.getThreadsCount ? tf.wasm.getThreadsCount() : null;
  }
  if (backend === "webgl") info.webglMaxTextureSizeUsed = tf.env().getNumber("WEBGL_MAX_TEXTURE_SIZE");
  return info;
}

async function fetchOrFail(url, what) {
  let response;
  try {
    response = await fetch(url);
  } catch (err) {
    throw new Error(`${what}: request failed (${err.message})`);
  }
  if (!response.ok) throw new Error(`${what}: HTTP ${response.status} ${response.statusText}`);
  return response.arrayBuffer();
}

function shardBytes(manifest) {
  const sizes = {float32: 4, int32: 4, bool: 1, string: 0, complex64: 8};
  let total = 0;
  for (const group of manifest) {
    for (const spec of group.weights) {
      const count = spec.shape.reduce((a, b) => a * b, 1);
      const dtype = spec.quantization ? spec.quantization.dtype : spec.dtype;
      const bytes = {uint8: 1, uint16: 2, float16: 2}[dtype] || sizes[spec.dtype];
      total += count * bytes;
    }
  }
  return total;
}

function resourceTiming(prefix) {
  const entries = performance.getEntriesByType("resource").filter((e) => e.name.includes(prefix));
  if (!entries.length) return null;
  return {
    entries: entries.length,
    ms: Math.max(...entries.map((e) => e.responseEnd)) - Math.min(...entries.map((e) => e.startTime)),
    transferBytes: entries.reduce((s, e) => s + e.transferSize, 0),
    bodyBytes: entries.reduce((s, e) => s + e.encodedBodySize, 0),
  };
}

async function download(base, version) {
  const query = `?v=${version}`;
  const raw = await fetchOrFail(`${base}model.json${query}`, "model.json");
  let json;
  try {
    json = JSON.parse(new TextDecoder().decode(raw));
  } catch (err) {
    throw new Error(`model.json is not valid JSON (${err.message})`);
  }
  if (!json.modelTopology || !Array.isArray(json.weightsManifest)) {
    throw new Error("model.json has no modelTopology/weightsManifest: not a TF.js graph model");
  }
  const paths = json.weightsManifest.flatMap((group) => group.paths);
  const buffers = await Promise.all(paths.map((p) => fetchOrFail(`${base}${p}${query}`, `weights shard ${p}`)));
  const received = buffers.reduce((s, b) => s + b.byteLength, 0);
  const expected = shardBytes(json.weightsManifest);
  if (received !== expected) {
    throw new Error(`weights shards hold ${received} bytes but model.json describes ${expected}: ` +
                    `a shard is truncated or from another model`);
  }
  return {json, weightData: tf.io.concatenateArrayBuffers(buffers), bytes: raw.byteLength + received};
}

/**
 * Take a loaded model into use. `outputNames` are the tensors to fetch, in order (the Python
 * side finds them: converters lose some names). A model input with -1 for H and W takes the
 * photo at its own size (OD API exports resize inside the graph); a fixed one gets it letterboxed.
 */
function useModel(model, outputNames) {
  const input = model.inputs[0];
  const shape = input.shape || [];
  const [, H, W, C] = shape;
  if (shape.length !== 4 || !(C === 3 || C === -1) || (H > 0) !== (W > 0)) {
    throw new Error(`model input shape ${JSON.stringify(shape)} is not [1, H, W, 3] (H and W fixed, or both -1)`);
  }
  if (!["float32", "int32"].includes(input.dtype)) {
    throw new Error(`model input dtype ${input.dtype}: expected float32 or an integer image (uint8/int32)`);
  }
  state.model = model;
  state.outputNames = outputNames;
  state.input = {height: H > 0 ? H : null, width: W > 0 ? W : null, dtype: input.dtype};
  state.executeAsync = false;
}

async function loadModel({base, version, store, indexedDbKey, saveToIndexedDb, outputNames}) {
  if (state.model) {
    state.model.dispose();
    state.model = null;
  }
  const result = {downloadMs: 0, downloadBytes: 0, resourceTiming: null, initMs: 0, source: store};
  if (store === "indexeddb") {
    const start = performance.now();
    useModel(await tf.loadGraphModel(`indexeddb://${indexedDbKey}`), outputNames);
    result.initMs = performance.now() - start;
  } else {
    performance.clearResourceTimings();
    const start = performance.now();
    const fetched = await download(base, version);
    const downloaded = performance.now();
    const artifacts = await tf.io.getModelArtifactsForJSON(fetched.json, async (manifest) =>
      [tf.io.getWeightSpecs(manifest), fetched.weightData]);
    useModel(await tf.loadGraphModel(tf.io.fromMemory(artifacts)), outputNames);
    result.initMs = performance.now() - downloaded;
    result.downloadMs = downloaded - start;
    result.downloadBytes = fetched.bytes;
    result.resourceTiming = resourceTiming(base);
  }
  if (saveToIndexedDb) await state.model.save(`indexeddb://${indexedDbKey}`);
  result.input = state.input;
  return result;
}

async function fetchPhoto({url, width, height}) {
  const buffer = await fetchOrFail(url, `photo ${url}`);
  if (buffer.byteLength !== width * height * 3) {
    throw new Error(`photo ${url}: ${buffer.byteLength} bytes, expected ${width}x${height}x3`);
  }
  return new Uint8Array(buffer);
}

/** The exact path: RGB pixels decoded by Python, letterboxed by the JS port of preprocess.py. */
function modelInput(rgb, photo) {
  const {height: H, width: W, dtype} = state.input;
  if (H === null) {
    const values = dtype === "int32" ? Int32Array.from(rgb) : Float32Array.from(rgb);
    return tf.tensor(values, [1, photo.height, photo.width, 3], dtype);
  }
  const values = letterbox(rgb, photo.height, photo.width, H, W, dtype === "int32");
  return tf.tensor(dtype === "int32" ? Int32Array.from(values) : values, [1, H, W, 3], dtype);
}

/** The page path: the decoded pixels on the backend -> the model input, on the backend too. */
function backendInput(pixels) {
  const {height: H, width: W, dtype} = state.input;
  if (H === null) {
    return tf.tidy(() => tf.expandDims(dtype === "int32" ? pixels : tf.cast(pixels, dtype), 0));
  }
  return letterboxOnBackend(pixels, H, W, dtype === "int32");
}

async function infer(x) {
  if (!state.executeAsync) {
    try {
      return state.model.execute(x, state.outputNames);
    } catch (err) {
      if (!/executeAsync|dynamic op/i.test(err.message)) throw err;
      state.executeAsync = true;
    }
  }
  return state.model.executeAsync(x, state.outputNames);
}

/** Wait until the backend has computed `t` (one value read back), so the parts of a photo add up. */
async function settle(t) {
  const one = tf.tidy(() => tf.slice(t, new Array(t.rank).fill(0), new Array(t.rank).fill(1)));
  try {
    await one.data();
  } finally {
    one.dispose();
  }
}

/** Model and readback of a ready input: the part of a photo comparable across paths and backends. */
async function runModel(x) {
  const start = performance.now();
  let outputs = [];
  try {
    outputs = await infer(x);
    if (!Array.isArray(outputs)) outputs = [outputs];
    const ran = performance.now();
    const values = await Promise.all(outputs.map((t) => t.data()));
    const end = performance.now();
    return {modelMs: ran - start, readbackMs: end - ran, outputs: values.map((v) => Array.from(v))};
  } finally {
    outputs.forEach((t) => t.dispose());
  }
}

/** Decode encoded photo bytes as a page does, and downsize on a canvas when `maxSide` asks for it. */
async function decodePhoto(bytes, photo, maxSide) {
  const bitmap = await createImageBitmap(new Blob([bytes], {type: photo.type || ""}));
  if (bitmap.width !== photo.width || bitmap.height !== photo.height) {
    const size = `${bitmap.width}x${bitmap.height}`;
    bitmap.close();
    throw new Error(`the browser decoded the photo as ${size}, not ${photo.width}x${photo.height} ` +
                    `(an EXIF orientation?); digitbench's boxes are for the stored pixels`);
  }
  const decoded = performance.now();
  const side = Math.max(bitmap.width, bitmap.height);
  if (!maxSide || side <= maxSide) return {source: bitmap, decoded, downsized: decoded};
  const scale = maxSide / side;
  const canvas = document.createElement("canvas");
  canvas.width = Math.max(1, Math.round(bitmap.width * scale));
  canvas.height = Math.max(1, Math.round(bitmap.height * scale));
  const context = canvas.getContext("2d");
  context.imageSmoothingQuality = "high";
  context.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close();
  return {source: canvas, decoded, downsized: performance.now()};
}

/** The page path of one photo: encoded bytes in page memory -> outputs in page memory, in parts. */
async function recognizeEncoded(photo, maxSide) {
  const bytes = await fetchOrFail(photo.url, `photo ${photo.url}`);
  const start = performance.now();
  const held = [];
  try {
    const {source, decoded, downsized} = await decodePhoto(bytes, photo, maxSide);
    const fed = {width: source.width, height: source.height};
    const pixels = tf.browser.fromPixels(source);
    held.push(pixels);
    if (source.close) source.close();
    await settle(pixels);
    const uploaded = performance.now();
    const x = backendInput(pixels);
    held.push(x);
    await settle(x);
    const prepared = performance.now();
    const run = await runModel(x);
    const end = performance.now();
    const parts = {decodeMs: decoded - start, uploadMs: uploaded - downsized, preprocessMs: prepared - uploaded,
                   modelMs: run.modelMs, readbackMs: run.readbackMs};
    if (downsized > decoded) parts.downsizeMs = downsized - decoded;
    return {latencyMs: end - prepared, endToEndMs: end - start, parts, outputs: run.outputs, fed};
  } finally {
    held.forEach((t) => t.dispose());
  }
}

/** The exact path of one photo: RGB bytes -> JS letterbox -> tensor -> outputs. */
async function recognizeExact(photo) {
  const rgb = await fetchPhoto(photo);
  const start = performance.now();
  const x = modelInput(rgb, photo);
  try {
    const prepared = performance.now();
    const run = await runModel(x);
    const end = performance.now();
    return {latencyMs: end - prepared, endToEndMs: end - start, outputs: run.outputs,
            parts: {preprocessMs: prepared - start, modelMs: run.modelMs, readbackMs: run.readbackMs},
            fed: {width: photo.width, height: photo.height}};
  } finally {
    x.dispose();
  }
}

async function recognize({photos, path, maxSide}) {
  if (!state.model) throw new Error("no model loaded");
  const results = [];
  for (const photo of photos) {
    try {
      results.push(path === "exact" ? await recognizeExact(photo) : await recognizeEncoded(photo, maxSide));
    } catch (err) {
      results.push({error: err && err.message ? err.message : String(err)});
    }
  }
  return results;
}

/** The model input a photo gets on either path, for checks against Python. */
async function input({photo, path}) {
  let x;
  if (path === "exact") {
    x = modelInput(await fetchPhoto(photo), photo);
  } else {
    const {source} = await decodePhoto(await fetchOrFail(photo.url, `photo ${photo.url}`), photo, 0);
    const pixels = tf.browser.fromPixels(source);
    x = backendInput(pixels);
    if (x !== pixels) pixels.dispose();
  }
  try {
    return {shape: x.shape, values: Array.from(await x.data())};
  } finally {
    x.dispose();
  }
}

/** Library entries (the page and TF.js) in Resource Timing, with the navigation itself. */
function libraryTiming(modelBase) {
  const navigation = performance.getEntriesByType("navigation")[0];
  const entries = [navigation, ...performance.getEntriesByType("resource")
    .filter((e) => !e.name.includes(modelBase) && !e.name.includes("/photos/"))].filter(Boolean);
  return {
    entries: entries.map((e) => ({name: new URL(e.name).pathname, transferBytes: e.transferSize,
                                  bodyBytes: e.encodedBodySize, end: e.responseEnd})),
    responseEnd: Math.max(...entries.map((e) => e.responseEnd)),
    transferBytes: entries.reduce((s, e) => s + e.transferSize, 0),
    bodyBytes: entries.reduce((s, e) => s + e.encodedBodySize, 0),
    fetchedBodyBytes: entries.filter((e) => e.transferSize > 0).reduce((s, e) => s + e.encodedBodySize, 0),
  };
}

/**
 * A first visit, started by the page itself as soon as its scripts have run (no WebDriver round
 * trip inside the figures): set up the TF.js backend, then load the model. `libraryMs` is the
 * time from the navigation's start to a ready backend (page, scripts, wasm fetched and compiled).
 */
async function visit(config) {
  const setupInfo = await setup(config.setup);
  const libraryMs = setupInfo.readyAt;
  const library = libraryTiming(config.model.base);
  const model = await loadModel(config.model);
  return {setup: setupInfo, libraryMs, library, model, viewport: {width: innerWidth, height: innerHeight,
          devicePixelRatio: devicePixelRatio}, userAgent: navigator.userAgent};
}

const bootConfig = JSON.parse(new URLSearchParams(location.search).get("boot") || "null");
const booted = bootConfig ? visit(bootConfig) : null;
if (booted) booted.catch(() => {});

const api = {setup, loadModel, recognize, input, webglInfo: async () => webglInfo(),
             visit: async () => {
               if (!booted) throw new Error("the page was opened without a ?boot= configuration");
               return booted;
             }};

window.digitbench = {
  ready: true,
  async call(name, args) {
    try {
      if (!api[name]) throw new Error(`unknown page call ${name}`);
      return {ok: true, value: await api[name](args || {})};
    } catch (err) {
      return {ok: false, error: err && err.message ? err.message : String(err)};
    }
  },
};
