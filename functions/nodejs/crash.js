// Exits the process abruptly, without an answer.
function main() {
  console.log('about to crash');
  process.exit(3);
}
