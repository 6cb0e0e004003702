// The minimal TF.js a page running a graph model on wasm ships: tfjs-core, tfjs-converter and the
// wasm backend, nothing else (no layers, no data, no other backend). Built by build.mjs at set-up.
import * as core from "@tensorflow/tfjs-core";
import {loadGraphModel} from "@tensorflow/tfjs-converter";
import {getThreadsCount, setWasmPaths} from "@tensorflow/tfjs-backend-wasm";

window.tf = {...core, loadGraphModel, wasm: {setWasmPaths, getThreadsCount}, version: {tfjs: core.version_core}};
