// Does nothing: the warm round-trip benchmark's action.
function main() {
  return {};
}
