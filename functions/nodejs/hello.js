// Greets `name`; logs to stdout and stderr; returns the activation id.
function main(params) {
  const name = params.name || 'stranger';
  console.log('hello from node:', name);
  console.error('a line on stderr');
  return {
    greeting: 'Hello ' + name + '!',
    activation_id: process.env.__OW_ACTIVATION_ID,
    action_name: process.env.__OW_ACTION_NAME,
    params,
  };
}
