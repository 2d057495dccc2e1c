// Allocates and touches `mb` megabytes (default 64), keeping them until it returns.
function main(params) {
  const mb = Number(params.mb || 64);
  const chunks = [];
  for (let i = 0; i < mb; i++) chunks.push(Buffer.alloc(1024 * 1024, 1));
  return { allocated_mb: chunks.length };
}
