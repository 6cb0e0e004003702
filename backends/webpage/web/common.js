/*
 * What the pages of the in-browser peers (tesseractjs, ortweb) share: fetching a file or failing
 * with one clear line, Resource Timing sums, and window.digitbench.call(name, args), the call
 * WebDriver makes through executeAsyncScript, which resolves to {ok: true, value} or
 * {ok: false, error} and never rejects (the protocol of the tfjs page).
 */
"use strict";

async function fetchBytes(url, what) {
  let response;
  try {
    response = await fetch(url);
  } catch (err) {
    throw new Error(`${what}: request failed (${err.message})`);
  }
  if (!response.ok) throw new Error(`${what} ${url}: HTTP ${response.status} ${response.statusText}`);
  return response.arrayBuffer();
}

/** Span and byte sums of the resource entries whose URL contains one of `parts`; null if none. */
function resourceTiming(parts) {
  const entries = performance.getEntriesByType("resource").filter((e) => parts.some((p) => e.name.includes(p)));
  if (!entries.length) return null;
  return {
    entries: entries.length,
    ms: Math.max(...entries.map((e) => e.responseEnd)) - Math.min(...entries.map((e) => e.startTime)),
    transferBytes: entries.reduce((s, e) => s + e.transferSize, 0),
    bodyBytes: entries.reduce((s, e) => s + e.encodedBodySize, 0),
  };
}

function errorText(err) {
  return err && err.message ? err.message : String(err);
}

/** Each photo through `one`, in order; a photo that fails gives {error} and the rest go on. */
async function eachPhoto(photos, one) {
  const results = [];
  for (const photo of photos) {
    try {
      results.push(await one(photo));
    } catch (err) {
      results.push({error: errorText(err)});
    }
  }
  return results;
}

/** Expose `api` (name -> async function of one argument object) as window.digitbench. */
function servePageApi(api) {
  window.digitbench = {
    ready: true,
    async call(name, args) {
      try {
        if (!api[name]) throw new Error(`unknown page call ${name}`);
        return {ok: true, value: await api[name](args || {})};
      } catch (err) {
        return {ok: false, error: errorText(err)};
      }
    },
  };
}
