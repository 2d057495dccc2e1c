// Sleeps `ms` milliseconds (default 1000), asynchronously.
function main(params) {
  const ms = Number(params.ms || 1000);
  return new Promise((resolve) => setTimeout(() => resolve({ slept_ms: ms }), ms));
}
