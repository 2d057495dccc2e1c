// sharp_sepia: sepia toning of an image with sharp (libvips recombination matrix).
const sharp = require('sharp');
const { runEtl } = require('faasload_store');

const SEPIA = [
  [0.393, 0.769, 0.189],
  [0.349, 0.686, 0.168],
  [0.272, 0.534, 0.131],
];

function main(args) {
  return runEtl(args, 'sharp_sepia', () => (data) => sharp(data).removeAlpha().recomb(SEPIA).toBuffer());
}
exports.main = main;
