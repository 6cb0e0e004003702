// Builds the minimal TF.js bundles (bundles/minimal-<backend>.js -> build/) offline from the npm
// packages in node_modules, with esbuild: one minified script per backend, as a site would ship.
import {build} from "esbuild";

for (const backend of ["wasm", "webgl", "cpu"]) {
  await build({
    entryPoints: [`bundles/minimal-${backend}.js`],
    outfile: `build/tfjs-minimal-${backend}.min.js`,
    bundle: true,
    minify: true,
    format: "iife",
    platform: "browser",
    target: "es2017",
    legalComments: "none",
    logLevel: "error",
  });
}
