// sharp_blur: Gaussian blur of an image with sharp (libvips); `sigma` 0.3..100.
const sharp = require('sharp');
const { paramFloat, runEtl } = require('faasload_store');

function main(args) {
  return runEtl(args, 'sharp_blur', (a) => {
    const sigma = paramFloat(a, 'sigma', 2.0, 0.3, 100);
    return (data) => sharp(data).blur(sigma).toBuffer();
  });
}
exports.main = main;
