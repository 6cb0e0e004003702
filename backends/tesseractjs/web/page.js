/*
 * The page side of digitbench's tesseractjs backend (its calls served by common.js's
 * servePageApi). All timings are performance.now() inside the page.
 *
 * load() fetches the worker script and the wasm core (with the page's tesseract.min.js: the library
 * part of cold start), then the traineddata (the download part), in the order the worker would, and
 * starts the Tesseract.js worker from those bytes (blob: URLs), so its start-up (init) fetches nothing.
 */
"use strict";

const state = {worker: null};

async function coreFile() {
  // The rule of tesseract.js's own getCore.js for an LSTM-only worker.
  const features = window.wasmFeatureDetect;
  if (await features.relaxedSimd()) return "tesseract-core-relaxedsimd-lstm.wasm.js";
  if (await features.simd()) return "tesseract-core-simd-lstm.wasm.js";
  return "tesseract-core-lstm.wasm.js";
}

function blobUrl(bytes, type) {
  return URL.createObjectURL(new Blob([bytes], type ? {type} : {}));
}

async function load({libraryPath, workerUrl, coreDir, langUrl, oem, psm, whitelist}) {
  if (state.worker) {
    await state.worker.terminate();
    state.worker = null;
  }
  const page = resourceTiming([libraryPath]);
  const core = await coreFile();
  performance.clearResourceTimings();
  const start = performance.now();
  const workerBytes = await fetchBytes(workerUrl, "worker script");
  const coreBytes = await fetchBytes(coreDir + core, "wasm core");
  const libraryFetched = performance.now();
  const libraryTiming = resourceTiming([workerUrl, coreDir]);
  const langBytes = await fetchBytes(langUrl, "traineddata");
  const downloaded = performance.now();
  const downloadTiming = resourceTiming([langUrl]);
  let workerError = null;
  const worker = await Tesseract.createWorker("eng", oem, {
    workerPath: blobUrl(workerBytes, "text/javascript"),
    // A fragment ending in "js" makes tesseract.js load exactly this file; blob: URLs ignore fragments.
    corePath: blobUrl(coreBytes, "text/javascript") + "#core.js",
    langPath: blobUrl(langBytes) + "#",
    cacheMethod: "none",
    gzip: true,
    errorHandler: (err) => { workerError = String(err); },
  });
  if (workerError) throw new Error(`Tesseract.js worker: ${workerError}`);
  await worker.setParameters({tessedit_pageseg_mode: String(psm), tessedit_char_whitelist: whitelist});
  state.worker = worker;
  return {
    libraryMs: (page ? page.ms : 0) + (libraryFetched - start),
    libraryBytes: (page ? page.transferBytes : 0) + (libraryTiming ? libraryTiming.transferBytes : 0),
    downloadMs: downloaded - libraryFetched,
    downloadBytes: downloadTiming ? downloadTiming.transferBytes : langBytes.byteLength,
    initMs: performance.now() - downloaded,
    parts: {worker: workerBytes.byteLength, core: coreBytes.byteLength, traineddata: langBytes.byteLength},
    core,
    userAgent: navigator.userAgent,
    crossOriginIsolated: self.crossOriginIsolated === true,
  };
}

async function upscaled(bytes, minHeight) {
  const bitmap = await createImageBitmap(new Blob([bytes]));
  const scale = minHeight / bitmap.height;
  const canvas = new OffscreenCanvas(Math.round(bitmap.width * scale), minHeight);
  const context = canvas.getContext("2d");
  context.imageSmoothingEnabled = true;
  context.imageSmoothingQuality = "high";
  context.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  const scaleX = canvas.width / bitmap.width;
  bitmap.close();
  return {image: await canvas.convertToBlob({type: "image/png"}), scaleX, scaleY: scale};
}

function symbolsOf(blocks) {
  const found = [];
  for (const block of blocks || []) {
    for (const paragraph of block.paragraphs || []) {
      for (const line of paragraph.lines || []) {
        for (const word of line.words || []) {
          for (const s of word.symbols || []) {
            found.push([s.text, s.confidence, s.bbox.x0, s.bbox.y0, s.bbox.x1, s.bbox.y1]);
          }
        }
      }
    }
  }
  return found;
}

async function recognizeOne(photo, minHeight) {
  const bytes = new Uint8Array(await fetchBytes(photo.url, "photo"));
  const start = performance.now();
  let image = bytes;
  let scaleX = 1;
  let scaleY = 1;
  if (minHeight && photo.height < minHeight) {
    ({image, scaleX, scaleY} = await upscaled(bytes, minHeight));
  }
  const prepared = performance.now();
  const {data} = await state.worker.recognize(image, {}, {text: true, blocks: true});
  const end = performance.now();
  return {latencyMs: end - start, prepareMs: prepared - start, recognizeMs: end - prepared, scaleX, scaleY,
          text: data.text || "", symbols: symbolsOf(data.blocks)};
}

async function recognize({photos, minHeight}) {
  if (!state.worker) throw new Error("no Tesseract.js worker loaded");
  return eachPhoto(photos, (photo) => recognizeOne(photo, minHeight));
}

servePageApi({load, recognize});
