// sharp_resize: resizes an image to `width` (100..1920) pixels, keeping its aspect ratio (sharp).
const sharp = require('sharp');
const { paramInt, runEtl } = require('faasload_store');

function main(args) {
  return runEtl(args, 'sharp_resize', (a) => {
    const width = paramInt(a, 'width', 640, 100, 1920);
    return (data) => sharp(data).resize({ width }).toBuffer();
  });
}
exports.main = main;
