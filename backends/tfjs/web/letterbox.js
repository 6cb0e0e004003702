/*
 * Photo -> model input: a line-for-line port of bench/model/preprocess.py (letterbox, steps 1-5
 * of its docstring). JavaScript numbers are float64 like the numpy code, so the values match
 * before the final float32 store. Keep the two files in step; tests/test_tfjs_page.py checks it.
 */
"use strict";

const LETTERBOX_FILL = 128.0;

/** The letterbox transform of an h x w photo into an H x W model input. */
function letterboxTransform(h, w, H, W) {
  return {scale: Math.min(H / h, W / w), offsetX: 0.0, offsetY: 0.0};
}

/** Step 3: the box-prefilter factor k. */
function prefilterFactor(scale, h, w) {
  const k = Math.floor(1.0 / scale);
  return Math.max(1, Math.min(k, h, w));
}

/** Step 3: average k x k blocks of an RGB Uint8Array, dropping incomplete edge blocks. */
function boxReduce(rgb, h, w, k) {
  if (k === 1) return {pixels: rgb, height: h, width: w};
  const hb = Math.floor(h / k);
  const wb = Math.floor(w / k);
  const out = new Float64Array(hb * wb * 3);
  const area = k * k;
  for (let r = 0; r < hb; r++) {
    for (let c = 0; c < wb; c++) {
      for (let ch = 0; ch < 3; ch++) {
        let sum = 0;
        for (let a = 0; a < k; a++) {
          const row = (r * k + a) * w;
          for (let b = 0; b < k; b++) sum += rgb[(row + c * k + b) * 3 + ch];
        }
        out[(r * wb + c) * 3 + ch] = sum / area;
      }
    }
  }
  return {pixels: out, height: hb, width: wb};
}

/**
 * Render an h x w RGB photo (Uint8Array, row-major, 3 channels) into a Float32Array of
 * H x W x 3 values in 0-255 (steps 1-5); `asUint8` applies floor(value + 0.5).
 */
function letterbox(rgb, h, w, H, W, asUint8) {
  if (h === 0 || w === 0) throw new Error(`cannot render an empty photo (${w}x${h})`);
  const t = letterboxTransform(h, w, H, W);
  const k = prefilterFactor(t.scale, h, w);
  const reduced = boxReduce(rgb, h, w, k);
  const B = reduced.pixels;
  const hb = reduced.height;
  const wb = reduced.width;
  const x0s = new Int32Array(W), x1s = new Int32Array(W), fxs = new Float64Array(W);
  const outsideX = new Uint8Array(W);
  for (let j = 0; j < W; j++) {
    const u = (j + 0.5 - t.offsetX) / t.scale;
    const x = Math.min(Math.max(u / k - 0.5, 0.0), wb - 1);
    x0s[j] = Math.floor(x);
    x1s[j] = Math.min(x0s[j] + 1, wb - 1);
    fxs[j] = x - x0s[j];
    outsideX[j] = (u < 0 || u >= w) ? 1 : 0;
  }
  const out = new Float32Array(H * W * 3);
  for (let i = 0; i < H; i++) {
    const v = (i + 0.5 - t.offsetY) / t.scale;
    const outsideY = v < 0 || v >= h;
    const y = Math.min(Math.max(v / k - 0.5, 0.0), hb - 1);
    const y0 = Math.floor(y);
    const y1 = Math.min(y0 + 1, hb - 1);
    const fy = y - y0;
    for (let j = 0; j < W; j++) {
      const o = (i * W + j) * 3;
      if (outsideY || outsideX[j]) {
        out[o] = out[o + 1] = out[o + 2] = LETTERBOX_FILL;
        continue;
      }
      const fx = fxs[j];
      const a = (y0 * wb + x0s[j]) * 3, b = (y0 * wb + x1s[j]) * 3;
      const c = (y1 * wb + x0s[j]) * 3, d = (y1 * wb + x1s[j]) * 3;
      for (let ch = 0; ch < 3; ch++) {
        const top = (1 - fx) * B[a + ch] + fx * B[b + ch];
        const bottom = (1 - fx) * B[c + ch] + fx * B[d + ch];
        out[o + ch] = (1 - fy) * top + fy * bottom;
      }
    }
  }
  if (asUint8) {
    for (let n = 0; n < out.length; n++) out[n] = Math.min(Math.max(Math.floor(Math.fround(out[n] + 0.5)), 0), 255);
  }
  return out;
}

/**
 * The page path's letterbox, in TF.js ops on the backend (what a page does with the pixels of
 * tf.browser.fromPixels): the same scale, k x k box prefilter (tf.avgPool) and half-pixel
 * bilinear resize (tf.image.resizeBilinear) to round(h * scale) x round(w * scale), padded with
 * LETTERBOX_FILL at the bottom and right. Not bit-equal to letterbox() above: resizeBilinear maps
 * the reduced photo onto whole output pixels, so sampling positions differ by under half a model
 * pixel (see docs/tfjs.md for what that does to accuracy). `pixels` is int32 [h, w, 3].
 */
function letterboxOnBackend(pixels, H, W, asUint8) {
  return tf.tidy(() => {
    const [h, w] = pixels.shape;
    if (h === 0 || w === 0) throw new Error(`cannot render an empty photo (${w}x${h})`);
    const t = letterboxTransform(h, w, H, W);
    const k = prefilterFactor(t.scale, h, w);
    let x = tf.expandDims(tf.cast(pixels, "float32"), 0);
    if (k > 1) x = tf.avgPool(x, k, k, "valid");
    const sh = Math.min(H, Math.max(1, Math.round(h * t.scale)));
    const sw = Math.min(W, Math.max(1, Math.round(w * t.scale)));
    x = tf.image.resizeBilinear(x, [sh, sw], false, true);
    x = tf.pad(x, [[0, 0], [0, H - sh], [0, W - sw], [0, 0]], LETTERBOX_FILL);
    if (asUint8) x = tf.cast(tf.clipByValue(tf.floor(tf.add(x, 0.5)), 0, 255), "int32");
    return x;
  });
}
