// Returns an application error.
function main(params) {
  return { error: 'something went wrong: ' + (params.why || 'no reason') };
}
