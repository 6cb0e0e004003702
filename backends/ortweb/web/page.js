/*
 * The page side of digitbench's ortweb backend: the detector (ONNX) on ONNX Runtime Web (its calls
 * served by common.js's servePageApi). All timings are performance.now() here.
 *
 * setup() loads the bundle a page would ship for one execution provider and fetches that bundle's
 * wasm runtime (the library part of cold start); ONNX Runtime's own request for the runtime then
 * comes from the HTTP cache. loadModel() downloads model.onnx and creates the session (init:
 * compiling the wasm runtime, building the graph). recognize() takes the same raw RGB photos and
 * the same letterbox (letterbox.js) as the tfjs page.
 */
"use strict";

const BUNDLES = {
  wasm: {script: "ort.wasm.min.js", runtime: ["ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"]},
  webgl: {script: "ort.webgl.min.js", runtime: []},
  webgpu: {script: "ort.webgpu.min.js",
           runtime: ["ort-wasm-simd-threaded.asyncify.mjs", "ort-wasm-simd-threaded.asyncify.wasm"]},
};
const OUTPUT_KEYS = ["detection_boxes", "detection_scores", "detection_classes", "num_detections"];

const state = {session: null, ep: null, input: null, inputName: null, ortBase: null};

function loadScript(url) {
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = url;
    script.onload = resolve;
    script.onerror = () => reject(new Error(`library ${url} did not load`));
    document.head.appendChild(script);
  });
}

function webglRenderer() {
  const gl = document.createElement("canvas").getContext("webgl2");
  if (!gl) return null;
  const ext = gl.getExtension("WEBGL_debug_renderer_info");
  const renderer = String(gl.getParameter(ext ? ext.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
  const lose = gl.getExtension("WEBGL_lose_context");
  if (lose) lose.loseContext();
  return renderer;
}

async function setup({ep, ortBase, threads}) {
  const bundle = BUNDLES[ep];
  if (!bundle) throw new Error(`unknown execution provider ${ep}: expected one of ${Object.keys(BUNDLES).join(", ")}`);
  if (ep === "webgpu" && !navigator.gpu) throw new Error("WebGPU is not available in this browser (navigator.gpu)");
  if (ep === "webgpu" && !(await navigator.gpu.requestAdapter())) {
    throw new Error("WebGPU: this browser has no adapter (no GPU, or WebGPU disabled)");
  }
  performance.clearResourceTimings();
  const start = performance.now();
  await loadScript(ortBase + bundle.script);
  for (const file of bundle.runtime) await fetchBytes(ortBase + file, "ONNX Runtime wasm runtime");
  const libraryMs = performance.now() - start;
  ort.env.wasm.wasmPaths = ortBase;
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.proxy = false;
  state.ep = ep;
  state.ortBase = ortBase;
  return {libraryMs, libraryTiming: resourceTiming([ortBase]), files: [bundle.script, ...bundle.runtime],
          webglRenderer: ep === "webgl" ? webglRenderer() : null,
          ortVersion: ort.env.versions ? ort.env.versions.web : null, userAgent: navigator.userAgent,
          crossOriginIsolated: self.crossOriginIsolated === true, threads};
}

async function loadModel({url}) {
  if (state.session) {
    await state.session.release();
    state.session = null;
  }
  const start = performance.now();
  const bytes = new Uint8Array(await fetchBytes(url, "model"));
  const downloaded = performance.now();
  const download = resourceTiming([url]);
  const before = performance.getEntriesByType("resource").length;
  const session = await ort.InferenceSession.create(bytes, {executionProviders: [state.ep],
                                                            graphOptimizationLevel: "all"});
  const initMs = performance.now() - downloaded;
  const runtimeRequests = performance.getEntriesByType("resource").slice(before)
    .filter((e) => e.name.includes(state.ortBase));
  const missing = OUTPUT_KEYS.filter((k) => !session.outputNames.includes(k));
  if (missing.length) throw new Error(`model lacks outputs ${missing.join(", ")} (it has ${session.outputNames})`);
  state.session = session;
  state.inputName = session.inputNames[0];
  const meta = session.inputMetadata ? session.inputMetadata[0] : null;
  const shape = meta && meta.shape ? meta.shape : null;
  return {downloadMs: downloaded - start, downloadBytes: bytes.byteLength, resourceTiming: download, initMs,
          runtimeRefetchedBytes: runtimeRequests.reduce((s, e) => s + e.transferSize, 0),
          inputName: state.inputName, inputShape: shape, outputNames: session.outputNames};
}

async function fetchPhoto({url, width, height}) {
  const buffer = await fetchBytes(url, `photo ${url}`);
  if (buffer.byteLength !== width * height * 3) {
    throw new Error(`photo ${url}: ${buffer.byteLength} bytes, expected ${width}x${height}x3`);
  }
  return new Uint8Array(buffer);
}

async function recognizeOne(photo, H, W) {
  const rgb = await fetchPhoto(photo);
  const start = performance.now();
  const x = new ort.Tensor("float32", letterbox(rgb, photo.height, photo.width, H, W, false), [1, H, W, 3]);
  const prepared = performance.now();
  const outputs = await state.session.run({[state.inputName]: x});
  const [boxes, scores, classes] = await Promise.all(OUTPUT_KEYS.slice(0, 3).map((k) => outputs[k].getData()));
  const end = performance.now();
  x.dispose();
  Object.values(outputs).forEach((t) => t.dispose());
  return {latencyMs: end - start, preprocessMs: prepared - start, boxes: Array.from(boxes),
          scores: Array.from(scores), classes: Array.from(classes)};
}

async function recognize({photos, height, width}) {
  if (!state.session) throw new Error("no model loaded");
  return eachPhoto(photos, (photo) => recognizeOne(photo, height, width));
}

servePageApi({setup, loadModel, recognize});
