#!/usr/bin/env node
// Extracts a TF.js layers-model from nsfwjs' JavaScript wrappers: MODEL_DIR/model.min.js exports
// {modelTopology, weightsManifest}; each MODEL_DIR/<path>.min.js of the manifest exports its shard as
// a base64 string. Writes OUT_DIR/model.json and the binary shards OUT_DIR/<path>: the files
// tf.loadLayersModel and `synapse import-keras` read.
//
//   node scripts/keras/extract-tfjs.js MODEL_DIR OUT_DIR
"use strict";
const fs = require("fs");
const path = require("path");

const [modelDir, outDir] = process.argv.slice(2);
if (!modelDir || !outDir) {
  console.error("usage: extract-tfjs.js MODEL_DIR OUT_DIR");
  process.exit(2);
}
const model = require(path.resolve(modelDir, "model.min.js"));
if (!model || !model.modelTopology || !model.weightsManifest) {
  console.error(`extract-tfjs: ${modelDir}/model.min.js exports no modelTopology/weightsManifest`);
  process.exit(1);
}
fs.mkdirSync(outDir, { recursive: true });
let bytes = 0;
for (const group of model.weightsManifest) {
  for (const p of group.paths) {
    const shard = require(path.resolve(modelDir, p + ".min.js"));
    if (typeof shard !== "string") {
      console.error(`extract-tfjs: ${modelDir}/${p}.min.js does not export a base64 string`);
      process.exit(1);
    }
    const buf = Buffer.from(shard, "base64");
    fs.writeFileSync(path.join(outDir, p), buf);
    bytes += buf.length;
  }
}
const json = { modelTopology: model.modelTopology, weightsManifest: model.weightsManifest, format: "layers-model" };
fs.writeFileSync(path.join(outDir, "model.json"), JSON.stringify(json));
console.log(`extract-tfjs: ${outDir}: model.json and ${bytes} bytes of weights`);
