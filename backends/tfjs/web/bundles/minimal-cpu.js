// The minimal TF.js a page running a graph model on cpu ships: tfjs-core, tfjs-converter and the
// cpu backend, nothing else (no layers, no data, no other backend). Built by build.mjs at set-up.
import * as core from "@tensorflow/tfjs-core";
import {loadGraphModel} from "@tensorflow/tfjs-converter";
import "@tensorflow/tfjs-backend-cpu";

window.tf = {...core, loadGraphModel, version: {tfjs: core.version_core}};
