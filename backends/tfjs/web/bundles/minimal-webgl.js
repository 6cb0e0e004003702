// The minimal TF.js a page running a graph model on webgl ships: tfjs-core, tfjs-converter and the
// webgl backend, nothing else (no layers, no data, no other backend). Built by build.mjs at set-up.
import * as core from "@tensorflow/tfjs-core";
import {loadGraphModel} from "@tensorflow/tfjs-converter";
import "@tensorflow/tfjs-backend-webgl";

window.tf = {...core, loadGraphModel, version: {tfjs: core.version_core}};
