// sharp_convert: converts an image to `format`, one of webp, tiff, png (sharp).
const sharp = require('sharp');
const { paramChoice, runEtl } = require('faasload_store');

function main(args) {
  let format;
  return runEtl(args, 'sharp_convert', (a) => {
    format = paramChoice(a, 'format', 'png', ['webp', 'tiff', 'png']);
    return (data) => sharp(data).toFormat(format).toBuffer();
  }, (name) => {
    const slash = name.lastIndexOf('/');
    const dot = name.lastIndexOf('.');
    return (dot > slash ? name.slice(0, dot) : name) + '.' + format;
  });
}
exports.main = main;
