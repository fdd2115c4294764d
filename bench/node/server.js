// The bench bot's turn (crates/bench/bench-bot.yaml) written the way a
// Node.js bot service usually is: node's http server, fetch (undici, with
// keep-alive), and the vm module for the bot's scripts. It is the peer that
// `cargo xtask bench` measures `patchbay serve` against, under the same load.
//
// Like patchbay it isolates scripts from one another (each run gets a new
// vm context, as vm's documentation recommends for untrusted code) and
// bounds their time (vm's `timeout`). With VM_CONTEXT=shared each worker
// makes one context and runs every script in it, the globals of the run
// set on it first (`node-shared` row): faster, and no isolation between
// runs, conversations or bots (a script's globals stay for the next run). It uses every core (cluster, one
// worker per core, WORKERS overrides), as patchbay does. Nothing from npm:
// the field paths of the bench bot are evaluated by a small path walker.
"use strict";
const cluster = require("node:cluster");
const http = require("node:http");
const os = require("node:os");
const vm = require("node:vm");

const UPSTREAM = process.env.UPSTREAM;
const TOKEN = process.env.TOKEN;
const WORKERS = Number(process.env.WORKERS || os.availableParallelism());
const PORT = Number(process.env.PORT || 0);
const VM_CONTEXT = process.env.VM_CONTEXT || "new";
if (VM_CONTEXT !== "new" && VM_CONTEXT !== "shared") {
  console.error(`VM_CONTEXT must be "new" or "shared", not "${VM_CONTEXT}"`);
  process.exit(2);
}

if (cluster.isPrimary) {
  const server = http.createServer();
  server.listen(PORT, "127.0.0.1", () => {
    const { port } = server.address();
    server.close();
    // Workers share the port the primary found free.
    for (let i = 0; i < WORKERS; i++) {
      cluster.fork({ PORT: String(port) });
    }
    let ready = 0;
    cluster.on("listening", () => {
      ready += 1;
      if (ready === WORKERS) {
        console.log(
          `node peer: listening on http://127.0.0.1:${port} (${WORKERS} workers, ${VM_CONTEXT === "shared" ? "one vm context per worker" : "a new vm context per run"})`,
        );
      }
    });
  });
} else {
  worker();
}

function worker() {
  const transform = new vm.Script(`
var data = JSON.parse(api_FAQS.jsonData);
data.api_FAQS.items = data.api_FAQS.items.filter(function (a) { return a.status === "published"; });
api_FAQS.jsonData = JSON.stringify(data);
`);
  const postProcess = new vm.Script(`
botContext.setBotVariable("found", botContext.getBotVariable("FAQS.titles.count"), true, false);
`);
  const LIMITS = { timeout: 1000 };
  const shared = VM_CONTEXT === "shared" ? vm.createContext({}) : null;

  // Runs a script with `globals`: in a new context, or in the shared one.
  function run(script, globals) {
    if (shared === null) {
      return script.runInNewContext(globals, LIMITS);
    }
    Object.assign(shared, globals);
    return script.runInContext(shared, LIMITS);
  }

  // `$.api_FAQS.items[0].title` and `[i]` (every element), as the bot uses.
  function path(document, expression) {
    let values = [document];
    for (const part of expression.replace(/^\$\./, "").split(".")) {
      const match = /^(\w+)(?:\[(\d+|i)\])?$/.exec(part);
      if (!match) return [];
      values = values.flatMap((value) => {
        const inner = value == null ? undefined : value[match[1]];
        if (match[2] === undefined) return inner === undefined ? [] : [inner];
        if (!Array.isArray(inner)) return [];
        return match[2] === "i" ? inner : inner[Number(match[2])] === undefined ? [] : [inner[Number(match[2])]];
      });
    }
    return values.map(String);
  }

  function botContext(variables, output) {
    return {
      getBotVariable: (name) => (name in variables ? variables[name] : null),
      setBotVariable: (name, value) => {
        variables[name] = String(value);
        output.variables[name] = String(value);
      },
      sendMessage: (text) => output.messages.push(String(text)),
    };
  }

  async function turn(request) {
    const state = request.state || {};
    const variables = Object.assign({}, state.variables || {});
    const url =
      `${UPSTREAM}/kb/${encodeURIComponent(variables.locale || "")}/search` +
      `?q=${encodeURIComponent(variables.query || "")}&limit=3`;
    const response = await fetch(url, {
      headers: {
        authorization: `Bearer ${TOKEN}`,
        "x-conversation": state.conversationId || "",
        accept: "application/json;charset=UTF-8",
        "content-type": "application/json;charset=UTF-8",
      },
    });
    const text = await response.text();
    const status = response.status;
    const output = { messages: [], variables: {} };
    const fields = {};
    variables.api_FAQSStatus = String(status);
    if (status === 200 || status === 201) {
      const api = { jsonData: JSON.stringify({ api_FAQS: JSON.parse(text) }) };
      run(transform, { api_FAQS: api, botContext: botContext(variables, output) });
      const document = JSON.parse(api.jsonData);
      const titles = path(document, "$.api_FAQS.items[i].title");
      const one = (values) => (values.length === 1 ? values[0] : values);
      fields["FAQS.title"] = one(path(document, "$.api_FAQS.items[0].title"));
      fields["FAQS.link"] = one(path(document, "$.api_FAQS.items[0].url"));
      fields["FAQS.titles"] = one(titles);
      variables["FAQS.titles.count"] = String(titles.length);
    }
    run(postProcess, { botContext: botContext(variables, output) });
    const messages = output.messages;
    let next = "end";
    if ((status === 200 || status === 201) && fields["FAQS.titles"] && fields["FAQS.titles"].length > 0) {
      messages.push(`Here is what I found: ${fields["FAQS.title"]} (${fields["FAQS.link"]})`);
      messages.push("Anything else?");
    } else {
      messages.push("Sorry, I could not find anything for that.");
    }
    return {
      status,
      success: status === 200 || status === 201,
      variables,
      fields,
      messages,
      next,
      state: { conversationId: state.conversationId || "", variables, fields },
    };
  }

  http
    .createServer((req, res) => {
      const chunks = [];
      req.on("data", (chunk) => chunks.push(chunk));
      req.on("end", () => {
        let body;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}");
        } catch (error) {
          res.writeHead(400, { "content-type": "application/json" });
          res.end(JSON.stringify({ error: { code: "invalid_json", message: String(error) } }));
          return;
        }
        turn(body).then(
          (result) => {
            res.writeHead(200, { "content-type": "application/json" });
            res.end(JSON.stringify(result));
          },
          (error) => {
            res.writeHead(500, { "content-type": "application/json" });
            res.end(JSON.stringify({ error: { code: "internal", message: String(error) } }));
          },
        );
      });
    })
    .listen(PORT, "127.0.0.1");
}
