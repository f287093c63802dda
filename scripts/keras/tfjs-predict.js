#!/usr/bin/env node
// Runs a TF.js layers-model with TF.js itself (npm @tensorflow/tfjs, pure-JS CPU backend) on JPEG
// photos, for comparison with Synapse's Keras import. Each photo is decoded (jpeg-js), resized
// bilinearly to the model's input size (tf.image.resizeBilinear) and divided by 255, as nsfwjs does.
// Writes OUT_DIR/inputs.f32 (the preprocessed batch [N, H, W, 3], float32 little-endian),
// OUT_DIR/outputs.f32 (the model's outputs [N, K]) and OUT_DIR/shapes.json.
//
//   node scripts/keras/tfjs-predict.js MODEL_JSON OUT_DIR IMAGE.jpg...
//
// The npm packages are installed on first use into $SYNAPSE_NODE_CACHE (default ~/.cache/synapse/node),
// outside the repository.
"use strict";
const fs = require("fs");
const path = require("path");
const os = require("os");
const { execFileSync } = require("child_process");

const [modelJson, outDir, ...images] = process.argv.slice(2);
if (!modelJson || !outDir || images.length === 0) {
  console.error("usage: tfjs-predict.js MODEL_JSON OUT_DIR IMAGE.jpg...");
  process.exit(2);
}
const cache = process.env.SYNAPSE_NODE_CACHE || path.join(os.homedir(), ".cache", "synapse", "node");
const packages = ["@tensorflow/tfjs@4.22.0", "jpeg-js@0.4.4"];
if (!fs.existsSync(path.join(cache, "node_modules", "@tensorflow", "tfjs")) ||
    !fs.existsSync(path.join(cache, "node_modules", "jpeg-js"))) {
  fs.mkdirSync(cache, { recursive: true });
  console.error(`tfjs-predict: installing ${packages.join(" ")} into ${cache}`);
  try {
    execFileSync("npm", ["install", "--no-audit", "--no-fund", "--silent", "--prefix", cache, ...packages],
                 { stdio: ["ignore", "ignore", "inherit"] });
  } catch (e) {
    console.error(`tfjs-predict: npm install failed: ${e.message}`);
    process.exit(3);
  }
}
const tf = require(path.join(cache, "node_modules", "@tensorflow", "tfjs"));
const jpeg = require(path.join(cache, "node_modules", "jpeg-js"));

// A file:// loader for tf.loadLayersModel in node: reads model.json and its shards from disk.
function fileHandler(p) {
  return {
    load: async () => {
      const json = JSON.parse(fs.readFileSync(p, "utf8"));
      const dir = path.dirname(p);
      const specs = [], buffers = [];
      for (const group of json.weightsManifest) {
        specs.push(...group.weights);
        for (const shard of group.paths) buffers.push(fs.readFileSync(path.join(dir, shard)));
      }
      const all = Buffer.concat(buffers);
      const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
      return { modelTopology: json.modelTopology, weightSpecs: specs, weightData, format: json.format };
    },
  };
}

(async () => {
  await tf.setBackend("cpu");
  const model = await tf.loadLayersModel(fileHandler(modelJson));
  const [, h, w, c] = model.inputs[0].shape;
  const batch = tf.tidy(() => tf.stack(images.map((file) => {
    const img = jpeg.decode(fs.readFileSync(file), { useTArray: true, formatAsRGBA: false });
    const t = tf.tensor3d(img.data, [img.height, img.width, 3], "int32").toFloat();
    return tf.image.resizeBilinear(t, [h, w]).div(255);
  })));
  if (c !== 3) throw new Error(`expected a 3-channel input, the model has ${c}`);
  const out = model.predict(batch);
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, "inputs.f32"), Buffer.from(batch.dataSync().buffer));
  fs.writeFileSync(path.join(outDir, "outputs.f32"), Buffer.from(out.dataSync().buffer));
  fs.writeFileSync(path.join(outDir, "shapes.json"),
                   JSON.stringify({ inputs: batch.shape, outputs: out.shape, images, tfjs: tf.version.tfjs }));
  console.log(`tfjs-predict: ${images.length} image(s) -> ${JSON.stringify(Array.from(out.dataSync()))}`);
})().catch((e) => { console.error(`tfjs-predict: ${e.stack || e}`); process.exit(1); });
