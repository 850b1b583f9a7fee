import { createRequire as __dbCreateRequire } from 'node:module'; const require = __dbCreateRequire(import.meta.url);

// src/config/load.ts
import { readFile } from "node:fs/promises";
import { dirname, resolve, posix } from "node:path";
import AjvModule from "ajv";
import { LineCounter, parseDocument, isMap, isPair, isScalar } from "yaml";

// src/config/schema.ts
var DURATION_PATTERN = "^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$";
var PLATFORM_PATTERN = "^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$";
var ENV_NAME_PATTERN = "^[A-Za-z_][A-Za-z0-9_]*$";
var PATTERN_TEXT = {
  [DURATION_PATTERN]: 'seconds as a number, or a string such as "90s", "10m", "1.5h"',
  [PLATFORM_PATTERN]: "a platform os/arch[/variant], e.g. linux/amd64 or linux/arm/v7",
  [ENV_NAME_PATTERN]: 'an environment variable name (letters, digits, "_"; not starting with a digit)'
};
var duration = {
  type: ["number", "string"],
  exclusiveMinimum: 0,
  pattern: DURATION_PATTERN,
  description: 'seconds as a number, or a string such as "90s", "10m", "1.5h"'
};
var stringList = (description) => ({ type: "array", items: { type: "string", minLength: 1 }, description });
var env = {
  type: "object",
  description: "Environment variables; values are strings (numbers and booleans are converted).",
  propertyNames: { pattern: ENV_NAME_PATTERN },
  additionalProperties: { type: ["string", "number", "boolean"] }
};
var platform = {
  type: "string",
  pattern: PLATFORM_PATTERN,
  description: "a platform os/arch[/variant], e.g. linux/amd64 or linux/arm/v7"
};
var configSchema = {
  $schema: "http://json-schema.org/draft-07/schema#",
  $id: "https://github.com/dist-build/dist-build/schema/dist-build.schema.json",
  title: "dist-build.yml",
  description: "Build invocations that dist-build places on workers with consistent hashing.",
  type: "object",
  additionalProperties: false,
  required: ["version", "invocations"],
  properties: {
    version: { const: 1, description: "Format version; always 1." },
    workers: {
      type: "object",
      additionalProperties: false,
      description: "Matrix size rule: clamp(ceil(invocations / max-per-worker), min, max) workers when none are given.",
      properties: {
        min: { type: "integer", minimum: 1, default: 1 },
        max: { type: "integer", minimum: 1, maximum: 256, default: 16 },
        "max-per-worker": { type: "integer", minimum: 1, default: 20 }
      }
    },
    placement: {
      type: "object",
      additionalProperties: false,
      properties: {
        balance: {
          type: "number",
          minimum: 1,
          maximum: 10,
          default: 1.1,
          description: "Capacity factor: a worker takes at most balance x max(total / workers, longest) seconds of expected work."
        },
        "default-duration": {
          ...duration,
          default: 60,
          description: "Expected duration of an invocation with neither history nor estimate."
        }
      }
    },
    env,
    invocations: {
      type: "object",
      minProperties: 1,
      description: "Build invocations by name.",
      additionalProperties: {
        type: "object",
        additionalProperties: false,
        properties: {
          run: {
            type: "string",
            minLength: 1,
            description: "Shell command, run in the config directory."
          },
          docker: {
            type: "object",
            additionalProperties: false,
            required: ["context"],
            description: "A Docker/BuildKit image build.",
            properties: {
              context: { type: "string", minLength: 1 },
              file: {
                type: "string",
                minLength: 1,
                description: "Dockerfile (default: <context>/Dockerfile)."
              },
              target: { type: "string", minLength: 1 },
              platforms: { type: "array", items: platform, uniqueItems: true },
              tags: stringList("Image references to tag and push."),
              "build-args": env
            }
          },
          inputs: stringList(
            "Globs (relative to the config directory) whose contents make up the cache key."
          ),
          outputs: stringList("Files or directories saved to the cache and exported."),
          needs: { ...stringList("Invocations whose outputs this one needs."), uniqueItems: true },
          export: { type: "boolean", default: false, description: "A final artifact of the run." },
          env,
          platform: {
            ...platform,
            description: "Only workers of this platform may take the invocation."
          },
          labels: {
            ...stringList("Only workers with all these labels may take the invocation."),
            uniqueItems: true
          },
          timeout: { ...duration, default: 3600 },
          estimate: { ...duration, description: "Expected duration, used until history exists." }
        }
      }
    }
  }
};

// src/config/errors.ts
function formatIssue(i) {
  const where = i.line > 0 ? `${i.file}:${i.line}:${i.col}` : i.file;
  return `${where}: ${i.path ? `${i.path}: ` : ""}${i.message}`;
}
var ConfigError = class extends Error {
  issues;
  constructor(issues) {
    const sorted = [...issues].sort((a, b) => a.line - b.line || a.col - b.col);
    const n = sorted.length;
    super(
      `${n} problem${n === 1 ? "" : "s"} in ${sorted[0]?.file ?? "config"}:
` + sorted.map((i) => `  ${formatIssue(i)}`).join("\n")
    );
    this.name = "ConfigError";
    this.issues = sorted;
  }
};

// src/config/duration.ts
var UNITS = { ms: 1e-3, s: 1, m: 60, h: 3600 };
function parseDuration(value) {
  if (typeof value === "number") return value;
  const m = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)$/.exec(value);
  if (!m)
    throw new Error(`invalid duration "${value}": expected seconds or a number with ms, s, m or h`);
  return Number(m[1]) * UNITS[m[2]];
}
function formatDuration(seconds) {
  if (seconds < 1) return `${Math.round(seconds * 1e3)}ms`;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 2 : 1)}s`;
  const s = Math.round(seconds);
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor(s % 3600 / 60)).padStart(2, "0")}m`;
}

// src/config/load.ts
var Ajv = AjvModule.default;
var validator;
function validateSchema(value) {
  if (!validator) {
    const ajv = new Ajv({ allErrors: true, allowUnionTypes: true, strict: true });
    validator = ajv.compile(configSchema);
  }
  return validator(value) ? [] : validator.errors ?? [];
}
var Locator = class {
  constructor(file, text) {
    this.file = file;
    this.doc = parseDocument(text, {
      lineCounter: this.lines,
      prettyErrors: false,
      uniqueKeys: true
    });
  }
  file;
  lines = new LineCounter();
  doc;
  pos(offset) {
    if (offset === void 0) return { line: 0, col: 0 };
    return this.lines.linePos(offset);
  }
  /** The value node at `path`, or the deepest existing ancestor. */
  node(path) {
    for (let n = path.length; n >= 0; n--) {
      const found = n === 0 ? this.doc.contents : this.doc.getIn(path.slice(0, n), true);
      if (found && typeof found === "object" && "range" in found)
        return found;
    }
    return void 0;
  }
  /** Position of the key `key` inside the map at `path` (for unknown keys), else of the map. */
  issueAtKey(path, key, message) {
    const map = this.node(path);
    if (map && isMap(map)) {
      const pair = map.items.find(
        (p) => isPair(p) && isScalar(p.key) && String(p.key.value) === key
      );
      const keyNode = pair?.key;
      if (keyNode?.range) return this.issue([...path, key], message, keyNode.range[0]);
    }
    return this.issueAt([...path, key], message);
  }
  issueAt(path, message) {
    return this.issue(path, message, this.node(path)?.range?.[0]);
  }
  issue(path, message, offset) {
    return { file: this.file, ...this.pos(offset), path: formatPath(path), message };
  }
  yamlErrors() {
    return this.doc.errors.map((e) => ({
      file: this.file,
      ...this.pos(e.pos[0]),
      path: "",
      message: e.message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "")
    }));
  }
};
function formatPath(path) {
  return path.map(
    (s, i) => typeof s === "number" ? `[${s}]` : /^[A-Za-z0-9_.-]+$/.test(s) ? `${i ? "." : ""}${s}` : `[${JSON.stringify(s)}]`
  ).join("");
}
function pointerToPath(pointer, value) {
  if (!pointer) return [];
  const out = [];
  let cur = value;
  for (const raw of pointer.slice(1).split("/")) {
    const seg = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    const key = Array.isArray(cur) && /^\d+$/.test(seg) ? Number(seg) : seg;
    out.push(key);
    cur = cur && typeof cur === "object" ? cur[String(key)] : void 0;
  }
  return out;
}
function typeName(v) {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  if (typeof v === "string") return `string ${JSON.stringify(v)}`;
  return `${typeof v} ${String(v)}`;
}
function schemaAt(path) {
  let s = configSchema;
  for (const seg of path) {
    if (!s) return void 0;
    const props = s.properties;
    if (typeof seg === "number") s = s.items;
    else if (props && seg in props) s = props[seg];
    else
      s = typeof s.additionalProperties === "object" ? s.additionalProperties : void 0;
  }
  return s;
}
function describeSchemaError(e, value, loc, data) {
  const path = pointerToPath(e.instancePath, data);
  const p = e.params;
  if (e.propertyName !== void 0) {
    const what = e.keyword === "pattern" ? `: expected ${PATTERN_TEXT[String(p.pattern)] ?? String(p.pattern)}` : "";
    return loc.issueAtKey(path, e.propertyName, `invalid name "${e.propertyName}"${what}`);
  }
  switch (e.keyword) {
    case "additionalProperties": {
      const key = String(p.additionalProperty);
      const known = Object.keys(schemaAt(path)?.properties ?? {});
      const hint = known.length ? `; expected one of: ${known.join(", ")}` : "";
      return loc.issueAtKey(path, key, `unknown key "${key}"${didYouMean(key, known)}${hint}`);
    }
    case "required":
      return loc.issueAt(path, `missing required key "${String(p.missingProperty)}"`);
    case "type":
      return loc.issueAt(
        path,
        `expected ${String(p.type).replace(",", " or ")}, got ${typeName(value)}`
      );
    case "const":
      return loc.issueAt(
        path,
        `expected ${JSON.stringify(p.allowedValue)}, got ${typeName(value)}`
      );
    case "enum":
      return loc.issueAt(
        path,
        `expected one of ${p.allowedValues.map((v) => JSON.stringify(v)).join(", ")}`
      );
    case "pattern": {
      const what = PATTERN_TEXT[String(p.pattern)] ?? `a string matching ${String(p.pattern)}`;
      return loc.issueAt(path, `got ${typeName(value)}; expected ${what}`);
    }
    case "uniqueItems":
      return loc.issueAt(
        path,
        `items must be unique (items ${String(p.j)} and ${String(p.i)} are equal)`
      );
    case "minProperties":
      return loc.issueAt(path, "expected at least one entry");
    default:
      return loc.issueAt(
        path,
        `${e.message ?? "invalid"}${value === void 0 ? "" : `, got ${typeName(value)}`}`
      );
  }
}
var NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
function levenshtein(a, b) {
  const d = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0];
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = d[j];
      d[j] = Math.min(d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return d[b.length];
}
function didYouMean(word, options) {
  let best;
  let bestD = Infinity;
  for (const o of options) {
    const d = levenshtein(word, o);
    if (d < bestD) [best, bestD] = [o, d];
  }
  return best !== void 0 && bestD <= Math.max(2, Math.floor(word.length / 3)) ? ` (did you mean "${best}"?)` : "";
}
function cleanRelative(p) {
  if (p.startsWith("/") || /^[A-Za-z]:[\\/]/.test(p) || p.includes("\\")) return void 0;
  const n = posix.normalize(p).replace(/\/+$/, "");
  if (n === ".." || n.startsWith("../")) return void 0;
  return n === "" ? "." : n;
}
function toEnv(raw) {
  const out = {};
  for (const [k, v] of Object.entries(raw ?? {})) out[k] = String(v);
  return out;
}
function findCycles(needs) {
  const state = /* @__PURE__ */ new Map();
  const stack = [];
  const cycles = [];
  const visit = (n) => {
    state.set(n, 1);
    stack.push(n);
    for (const m of needs.get(n) ?? []) {
      if (!needs.has(m) || m === n) continue;
      if (state.get(m) === 1) cycles.push([...stack.slice(stack.indexOf(m)), m]);
      else if (!state.has(m)) visit(m);
    }
    stack.pop();
    state.set(n, 2);
  };
  for (const n of needs.keys()) if (!state.has(n)) visit(n);
  return cycles;
}
function parseConfig(text, file, display = file) {
  const loc = new Locator(display, text);
  const yamlIssues = loc.yamlErrors();
  if (yamlIssues.length) throw new ConfigError(yamlIssues);
  const data = loc.doc.toJS();
  if (data === null || data === void 0) {
    throw new ConfigError([
      {
        file: display,
        line: 1,
        col: 1,
        path: "",
        message: "the file is empty; expected a mapping with version and invocations"
      }
    ]);
  }
  const schemaErrors = validateSchema(data);
  if (schemaErrors.length) {
    const seen = /* @__PURE__ */ new Set();
    const issues = [];
    for (const e of schemaErrors.filter((x) => x.keyword !== "propertyNames")) {
      const value = pointerToPath(e.instancePath, data).reduce(
        (v, s) => v && typeof v === "object" ? v[String(s)] : void 0,
        data
      );
      const issue = describeSchemaError(e, value, loc, data);
      const id = `${issue.path}|${issue.message}`;
      if (seen.has(id)) continue;
      seen.add(id);
      issues.push(issue);
    }
    throw new ConfigError(issues);
  }
  return buildConfig(data, resolve(file), loc);
}
function buildConfig(raw, file, loc) {
  const issues = [];
  const workersRaw = raw.workers ?? {};
  const placementRaw = raw.placement ?? {};
  const workers = {
    min: workersRaw.min ?? 1,
    max: workersRaw.max ?? 16,
    maxPerWorker: workersRaw["max-per-worker"] ?? 20
  };
  if (workers.min > workers.max) {
    issues.push(
      loc.issueAt(["workers", "min"], `min (${workers.min}) is larger than max (${workers.max})`)
    );
  }
  const globalEnv = toEnv(raw.env);
  const rawInvocations = raw.invocations;
  const names = Object.keys(rawInvocations);
  const lower = /* @__PURE__ */ new Map();
  const invocations = [];
  const duration2 = (path, v) => {
    if (v === void 0) return void 0;
    try {
      return parseDuration(v);
    } catch (err) {
      issues.push(loc.issueAt(path, err.message));
      return void 0;
    }
  };
  const relPaths = (path, list, allowNegation) => (list ?? []).flatMap((p, i) => {
    const neg = allowNegation && p.startsWith("!");
    const clean = cleanRelative(neg ? p.slice(1) : p);
    if (clean === void 0) {
      issues.push(
        loc.issueAt(
          [...path, i],
          `"${p}" must be a relative path inside the config directory (no absolute paths, no "..", "/" separators)`
        )
      );
      return [];
    }
    return [neg ? `!${clean}` : clean];
  });
  for (const name of names) {
    const r = rawInvocations[name];
    const at = (...rest) => ["invocations", name, ...rest];
    if (!NAME_PATTERN.test(name)) {
      issues.push(
        loc.issueAtKey(
          ["invocations"],
          name,
          `invalid invocation name "${name}": expected 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit`
        )
      );
    }
    const other = lower.get(name.toLowerCase());
    if (other !== void 0) {
      issues.push(
        loc.issueAtKey(
          ["invocations"],
          name,
          `invocation name "${name}" differs from "${other}" only by case (names become file names)`
        )
      );
    }
    lower.set(name.toLowerCase(), name);
    if (r.run === void 0 === (r.docker === void 0)) {
      issues.push(
        loc.issueAt(
          at(),
          r.run === void 0 ? 'expected one of "run" or "docker"' : '"run" and "docker" cannot both be set'
        )
      );
    }
    let docker;
    if (r.docker) {
      const d = r.docker;
      const context = relPaths(at("docker"), [d.context], false)[0];
      const dockerfile = d.file === void 0 ? void 0 : relPaths(at("docker"), [d.file], false)[0];
      if (context !== void 0) {
        docker = {
          context,
          file: dockerfile ?? posix.join(context, "Dockerfile"),
          platforms: d.platforms ?? [],
          tags: d.tags ?? [],
          buildArgs: toEnv(d["build-args"]),
          ...d.target === void 0 ? {} : { target: d.target }
        };
      }
      if (r.platform !== void 0) {
        issues.push(
          loc.issueAt(
            at("platform"),
            "docker invocations take their platforms from docker.platforms"
          )
        );
      }
    }
    const needs = r.needs ?? [];
    needs.forEach((n, i) => {
      if (n === name) issues.push(loc.issueAt(at("needs", i), `"${name}" cannot need itself`));
      else if (!(n in rawInvocations)) {
        issues.push(
          loc.issueAt(at("needs", i), `unknown invocation "${n}"${didYouMean(n, names)}`)
        );
      }
    });
    const inv = {
      name,
      inputs: relPaths(at("inputs"), r.inputs, true),
      outputs: relPaths(at("outputs"), r.outputs, false),
      needs,
      export: r.export ?? false,
      env: { ...globalEnv, ...toEnv(r.env) },
      labels: r.labels ?? [],
      timeout: duration2(at("timeout"), r.timeout) ?? 3600
    };
    if (r.run !== void 0) inv.run = r.run;
    if (docker) inv.docker = docker;
    if (r.platform !== void 0) inv.platform = r.platform;
    const estimate = duration2(at("estimate"), r.estimate);
    if (estimate !== void 0) inv.estimate = estimate;
    inv.outputs.forEach((o, i) => {
      if (o === ".")
        issues.push(
          loc.issueAt(at("outputs", i), "an output cannot be the whole config directory")
        );
    });
    invocations.push(inv);
  }
  const owners = [];
  for (const inv of invocations)
    inv.outputs.forEach((path, index) => owners.push({ path, name: inv.name, index }));
  for (let i = 0; i < owners.length; i++) {
    for (let j = i + 1; j < owners.length; j++) {
      const [a, b] = [owners[i], owners[j]];
      if (a.name === b.name) continue;
      if (a.path === b.path || b.path.startsWith(`${a.path}/`) || a.path.startsWith(`${b.path}/`)) {
        issues.push(
          loc.issueAt(
            ["invocations", b.name, "outputs", b.index],
            `output "${b.path}" overlaps output "${a.path}" of invocation "${a.name}"`
          )
        );
      }
    }
  }
  const cycles = findCycles(new Map(invocations.map((i) => [i.name, i.needs])));
  for (const cycle of cycles) {
    const [from, to] = [cycle[0], cycle[1]];
    const index = rawInvocations[from].needs ? rawInvocations[from].needs.indexOf(to) : 0;
    issues.push(
      loc.issueAt(["invocations", from, "needs", index], `needs cycle: ${cycle.join(" -> ")}`)
    );
  }
  if (issues.length) throw new ConfigError(issues);
  const defaultDuration = placementRaw["default-duration"] === void 0 ? 60 : parseDuration(placementRaw["default-duration"]);
  return {
    file,
    root: dirname(file),
    version: 1,
    workers,
    placement: { balance: placementRaw.balance ?? 1.1, defaultDuration },
    env: globalEnv,
    invocations
  };
}
async function loadConfig(path) {
  const file = resolve(path);
  let text;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    const code = err.code;
    const why = code === "ENOENT" ? "file not found" : code === "EISDIR" ? "is a directory" : err.message;
    throw new ConfigError([
      { file: path, line: 0, col: 0, path: "", message: `cannot read config: ${why}` }
    ]);
  }
  return parseConfig(text, file, path);
}

// src/plan/units.ts
function expandUnits(config) {
  const platformsOf = (inv) => inv.docker && inv.docker.platforms.length > 1 ? inv.docker.platforms : [];
  const byName = new Map(config.invocations.map((i) => [i.name, i]));
  const unitIds = (inv) => {
    const ps = platformsOf(inv);
    return ps.length ? ps.map((p) => `${inv.name}@${p}`) : [inv.name];
  };
  const units = [];
  for (const inv of config.invocations) {
    const fanOut = platformsOf(inv);
    const platforms = fanOut.length ? fanOut : [inv.platform ?? inv.docker?.platforms[0]];
    for (const platform2 of platforms) {
      const needs = inv.needs.flatMap((n) => {
        const dep = byName.get(n);
        const depPlatforms = platformsOf(dep);
        if (platform2 !== void 0 && depPlatforms.includes(platform2))
          return [`${dep.name}@${platform2}`];
        return unitIds(dep);
      });
      const keyed = platform2 !== void 0 ? `${inv.name}@${platform2}` : inv.name;
      units.push({
        id: fanOut.length ? keyed : inv.name,
        invocation: inv.name,
        ...platform2 === void 0 ? {} : { platform: platform2 },
        affinityKey: keyed,
        needs,
        labels: inv.labels
      });
    }
  }
  return units;
}
function workerCount(config, units) {
  const { min, max, maxPerWorker } = config.workers;
  return Math.min(max, Math.max(min, Math.ceil(units / maxPerWorker)));
}

// src/plan/plan.ts
import { readFile as readFile3 } from "node:fs/promises";

// src/plan/hash.ts
var C1 = 3432918353;
var C2 = 461845907;
function fmix32(h) {
  h ^= h >>> 16;
  h = Math.imul(h, 2246822507);
  h ^= h >>> 13;
  h = Math.imul(h, 3266489909);
  h ^= h >>> 16;
  return h >>> 0;
}
function scramble(k) {
  k = Math.imul(k, C1);
  k = k << 15 | k >>> 17;
  return Math.imul(k, C2);
}
function round(h, scrambled) {
  h ^= scrambled;
  h = h << 13 | h >>> 19;
  return Math.imul(h, 5) + 3864292196 | 0;
}
function murmur3(bytes, len = bytes.length, seed = 0) {
  let h = seed | 0;
  const blocks = len & ~3;
  for (let i = 0; i < blocks; i += 4) {
    const k = bytes[i] | bytes[i + 1] << 8 | bytes[i + 2] << 16 | bytes[i + 3] << 24;
    h = round(h, scramble(k));
  }
  const tail = len & 3;
  if (tail > 0) {
    let k = bytes[blocks];
    if (tail > 1) k |= bytes[blocks + 1] << 8;
    if (tail > 2) k |= bytes[blocks + 2] << 16;
    h ^= scramble(k);
  }
  return fmix32(h ^ len);
}
var encoder = new TextEncoder();
var scratch = new Uint8Array(256);
function hashString(s) {
  if (scratch.length < s.length * 3) scratch = new Uint8Array(s.length * 3);
  const { written } = encoder.encodeInto(s, scratch);
  return murmur3(scratch, written);
}
function mixKey(a) {
  return round(0, scramble(a));
}
function mixWorker(b) {
  return scramble(b);
}
function mixScore(key, worker) {
  return fmix32(round(key, worker) ^ 8);
}

// src/plan/simulate.ts
function needsGraph(items) {
  const n = items.length;
  const index = /* @__PURE__ */ new Map();
  for (let i = 0; i < n; i++) {
    const id = items[i].id;
    if (index.has(id)) throw new Error(`duplicate item id "${id}"`);
    index.set(id, i);
  }
  const deps = new Array(n);
  const dependents = new Array(n);
  for (let i = 0; i < n; i++) dependents[i] = [];
  const indegree = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const list = [];
    for (const need of items[i].needs) {
      const j = index.get(need);
      if (j === void 0 || list.includes(j)) continue;
      list.push(j);
      dependents[j].push(i);
    }
    deps[i] = list;
    indegree[i] = list.length;
  }
  const order = [];
  for (let i = 0; i < n; i++) if (indegree[i] === 0) order.push(i);
  for (let head = 0; head < order.length; head++) {
    for (const j of dependents[order[head]]) if (--indegree[j] === 0) order.push(j);
  }
  if (order.length < n) {
    const stuck = [];
    for (let i = 0; i < n; i++) if (indegree[i] > 0) stuck.push(items[i].id);
    stuck.sort();
    const shown = stuck.slice(0, 10).join(", ") + (stuck.length > 10 ? ", ..." : "");
    throw new Error(`needs cycle among: ${shown}`);
  }
  return { index, deps, dependents, order };
}
function tailLengths(items, graph) {
  const tail = new Float64Array(items.length);
  for (let k = graph.order.length - 1; k >= 0; k--) {
    const i = graph.order[k];
    let best = 0;
    for (const j of graph.dependents[i]) if (tail[j] > best) best = tail[j];
    tail[i] = items[i].duration + best;
  }
  return tail;
}
var Heap = class {
  constructor(less) {
    this.less = less;
  }
  less;
  a = [];
  get size() {
    return this.a.length;
  }
  peek() {
    return this.a[0];
  }
  push(x) {
    const a = this.a;
    let i = a.length;
    a.push(x);
    while (i > 0) {
      const p = i - 1 >> 1;
      if (!this.less(x, a[p])) break;
      a[i] = a[p];
      i = p;
    }
    a[i] = x;
  }
  pop() {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    const n = a.length;
    if (n > 0) {
      let i = 0;
      for (; ; ) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && this.less(a[r], a[l]) ? r : l;
        if (!this.less(a[c], last)) break;
        a[i] = a[c];
        i = c;
      }
      a[i] = last;
    }
    return top;
  }
};
function simulateMakespan(items, assignments, graph = needsGraph(items)) {
  const n = items.length;
  if (n === 0) return 0;
  const workerIndex = /* @__PURE__ */ new Map();
  const workerOf = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const w = Object.hasOwn(assignments, items[i].id) ? assignments[items[i].id] : void 0;
    if (w === void 0) throw new Error(`item "${items[i].id}" has no assignment`);
    let wi = workerIndex.get(w);
    if (wi === void 0) {
      wi = workerIndex.size;
      workerIndex.set(w, wi);
    }
    workerOf[i] = wi;
  }
  const tail = tailLengths(items, graph);
  const byId = Array.from({ length: n }, (_, i) => i).sort(
    (x, y) => items[x].id < items[y].id ? -1 : items[x].id > items[y].id ? 1 : 0
  );
  const idRank = new Int32Array(n);
  for (let k = 0; k < n; k++) idRank[byId[k]] = k;
  const before = (x, y) => tail[x] !== tail[y] ? tail[x] > tail[y] : items[x].duration !== items[y].duration ? items[x].duration > items[y].duration : idRank[x] < idRank[y];
  const nw = workerIndex.size;
  const ready = Array.from({ length: nw }, () => new Heap(before));
  const busy = new Uint8Array(nw);
  const finish = new Float64Array(n);
  const events = new Heap(
    (x, y) => finish[x] !== finish[y] ? finish[x] < finish[y] : idRank[x] < idRank[y]
  );
  const waiting = new Int32Array(n);
  const dirty = [];
  for (let i = 0; i < n; i++) {
    waiting[i] = graph.deps[i].length;
    if (waiting[i] === 0) ready[workerOf[i]].push(i);
  }
  for (let w = 0; w < nw; w++) dirty.push(w);
  let now = 0;
  let makespan = 0;
  for (; ; ) {
    for (const w of dirty) {
      if (busy[w] || ready[w].size === 0) continue;
      const i = ready[w].pop();
      finish[i] = now + items[i].duration;
      if (finish[i] > makespan) makespan = finish[i];
      busy[w] = 1;
      events.push(i);
    }
    dirty.length = 0;
    if (events.size === 0) break;
    now = finish[events.peek()];
    while (events.size > 0 && finish[events.peek()] === now) {
      const i = events.pop();
      busy[workerOf[i]] = 0;
      dirty.push(workerOf[i]);
      for (const j of graph.dependents[i]) {
        if (--waiting[j] === 0) {
          ready[workerOf[j]].push(j);
          dirty.push(workerOf[j]);
        }
      }
    }
  }
  return makespan;
}

// src/plan/placement.ts
var ARCH_ALIASES = { x86_64: "amd64", aarch64: "arm64" };
function parsePlatform(text) {
  const [os = "", arch = "", variant = ""] = text.trim().toLowerCase().split("/");
  return normalizePlatform(os.trim(), arch.trim(), variant.trim());
}
function normalizePlatform(os, arch, variant) {
  const a = ARCH_ALIASES[arch] ?? arch;
  const defaultVariant = a === "arm64" && variant === "v8" || a === "amd64" && variant === "v1";
  return { os, arch: a, variant: defaultVariant ? "" : variant };
}
function formatPlatform(p) {
  const s = `${p.os || "*"}/${p.arch || "*"}`;
  return p.variant ? `${s}/${p.variant}` : s;
}
function matches(want, offer) {
  return (!want.os || !offer.os || want.os === offer.os) && (!want.arch || !offer.arch || want.arch === offer.arch) && (!want.variant || !offer.variant || want.variant === offer.variant);
}
function splitList(text) {
  if (!text) return [];
  return text.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
}
function parseWorker(worker) {
  const ann = worker.annotations ?? {};
  const os = (ann.os ?? "").trim().toLowerCase();
  const arch = (ann.arch ?? "").trim().toLowerCase();
  const extra = splitList(ann.platforms);
  const platforms = [];
  if (os || arch) platforms.push(normalizePlatform(os, arch, ""));
  for (const p of extra) platforms.push(parsePlatform(p));
  return { any: platforms.length === 0, platforms, labels: new Set(splitList(ann.labels)) };
}
function accepts(caps, item) {
  for (const label of item.labels) if (!caps.labels.has(label)) return false;
  if (!item.platform || caps.any) return true;
  const want = parsePlatform(item.platform);
  return caps.platforms.some((offer) => matches(want, offer));
}
function describeWorker(worker) {
  const caps = parseWorker(worker);
  const platforms = caps.any ? "any platform" : caps.platforms.map(formatPlatform).join(", ");
  return `${worker.id} (${platforms}, labels [${[...caps.labels].join(", ")}])`;
}
var NoEligibleWorkerError = class extends Error {
  name = "NoEligibleWorkerError";
  /** The item that cannot be placed. */
  item;
  constructor(item, workers) {
    const needs = `needs ${item.platform ? `platform ${item.platform}` : "any platform"}, labels [${item.labels.join(", ")}]`;
    const shown = workers.slice(0, 20).map(describeWorker);
    if (workers.length > 20) shown.push(`... and ${workers.length - 20} more`);
    const offered = workers.length === 0 ? "none" : shown.join(", ");
    super(`no worker can take "${item.id}" (${needs}); workers: ${offered}`);
    this.item = item.id;
  }
};
function compareStrings(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}
function prepare(items, inputWorkers) {
  const workers = [...inputWorkers].sort((a, b) => compareStrings(a.id, b.id));
  for (let j = 1; j < workers.length; j++) {
    if (workers[j].id === workers[j - 1].id)
      throw new Error(`duplicate worker id "${workers[j].id}"`);
  }
  const nw = workers.length;
  for (const item of items) {
    if (!(item.duration >= 0) || !Number.isFinite(item.duration)) {
      throw new RangeError(`item "${item.id}" has invalid duration ${item.duration}`);
    }
  }
  const graph = needsGraph(items);
  const caps = workers.map(parseWorker);
  const sets = [];
  const setByKey = /* @__PURE__ */ new Map();
  const addSet = (list) => {
    const key = list.join(",");
    let s = setByKey.get(key);
    if (s === void 0) {
      const member = new Uint8Array(nw);
      for (const j of list) member[j] = 1;
      s = sets.length;
      sets.push({ workers: Int32Array.from(list), member });
      setByKey.set(key, s);
    }
    return s;
  };
  const bySignature = /* @__PURE__ */ new Map();
  const setOf = new Int32Array(items.length);
  let failed;
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    const signature = `${item.platform ?? ""}\0${[...new Set(item.labels)].sort().join("\0")}`;
    let s = bySignature.get(signature);
    if (s === void 0) {
      const list = [];
      for (let j = 0; j < nw; j++) if (accepts(caps[j], item)) list.push(j);
      s = addSet(list);
      bySignature.set(signature, s);
    }
    setOf[i] = s;
    if (sets[s].workers.length === 0 && (failed === void 0 || item.id < failed.id))
      failed = item;
  }
  if (failed) throw new NoEligibleWorkerError(failed, workers);
  let lowerBound = 0;
  for (const t of tailLengths(items, graph)) if (t > lowerBound) lowerBound = t;
  const itemSets = sets.length;
  const setTotal = new Float64Array(itemSets);
  const byId = Array.from(items.keys()).sort((a, b) => compareStrings(items[a].id, items[b].id));
  for (const i of byId) setTotal[setOf[i]] += items[i].duration;
  const union = [];
  for (let j = 0; j < nw; j++) {
    for (let s = 0; s < itemSets; s++) {
      if (sets[s].member[j]) {
        union.push(j);
        break;
      }
    }
  }
  const candidates = items.length > 0 ? [...sets.slice(0, itemSets), sets[addSet(union)]] : [];
  for (const e of candidates) {
    let confined = 0;
    for (let s = 0; s < itemSets; s++) {
      if (sets[s].workers.every((j) => e.member[j] === 1)) confined += setTotal[s];
    }
    lowerBound = Math.max(lowerBound, confined / e.workers.length);
  }
  const intersections = /* @__PURE__ */ new Map();
  const intersect = (a, b) => {
    if (a === b) return a;
    const key = Math.min(a, b) * 1048576 + Math.max(a, b);
    let r = intersections.get(key);
    if (r === void 0) {
      const list = [];
      for (const j of sets[a].workers) if (sets[b].member[j]) list.push(j);
      r = list.length === 0 ? -1 : addSet(list);
      intersections.set(key, r);
    }
    return r;
  };
  return { workers, sets, setOf, graph, lowerBound, intersect };
}
function buildUnits(items, prep, workerIndex, previous) {
  const { graph, setOf } = prep;
  const n = items.length;
  const next = new Int32Array(n).fill(-1);
  const hasPrev = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const deps = graph.deps[i];
    if (deps.length === 1 && graph.dependents[deps[0]].length === 1) {
      next[deps[0]] = i;
      hasPrev[i] = 1;
    }
  }
  const previousOf = (i) => {
    const id = items[i].id;
    const w = Object.hasOwn(previous, id) ? workerIndex.get(previous[id]) : void 0;
    return w === void 0 ? -1 : w;
  };
  const units = [];
  const emit = (members, set) => {
    const head = items[members[0]];
    let duration2 = 0;
    let prev = previousOf(members[0]);
    for (const i of members) {
      duration2 += items[i].duration;
      if (prev >= 0 && previousOf(i) !== prev) prev = -1;
    }
    if (prev >= 0 && !prep.sets[set].member[prev]) prev = -1;
    units.push({
      members,
      duration: duration2,
      keyHash: hashString(head.affinityKey),
      key: head.affinityKey,
      id: head.id,
      set,
      previous: prev,
      long: false,
      rank: 0
    });
  };
  for (let i = 0; i < n; i++) {
    if (hasPrev[i]) continue;
    let members = [i];
    let set = setOf[i];
    for (let j = next[i]; j >= 0; j = next[j]) {
      const both = prep.intersect(set, setOf[j]);
      if (both >= 0) {
        members.push(j);
        set = both;
      } else {
        emit(members, set);
        members = [j];
        set = setOf[j];
      }
    }
    emit(members, set);
  }
  return units;
}
function compareUnits(a, b, sets) {
  if (a.long !== b.long) return a.long ? -1 : 1;
  const ea = sets[a.set].workers.length;
  const eb = sets[b.set].workers.length;
  if (ea !== eb) return ea - eb;
  if (a.long && a.duration !== b.duration) return b.duration - a.duration;
  if (a.keyHash !== b.keyHash) return a.keyHash - b.keyHash;
  return compareStrings(a.key, b.key) || compareStrings(a.id, b.id);
}
function place(input) {
  const { items, balance } = input;
  if (!(balance >= 1) || !Number.isFinite(balance)) {
    throw new RangeError(`balance must be a number >= 1, got ${balance}`);
  }
  const prep = prepare(items, input.workers);
  const { workers, sets } = prep;
  const nw = workers.length;
  const workerIndex = /* @__PURE__ */ new Map();
  const workerMix = new Int32Array(nw);
  for (let j = 0; j < nw; j++) {
    workerIndex.set(workers[j].id, j);
    workerMix[j] = mixWorker(hashString(workers[j].id));
  }
  const lb = prep.lowerBound;
  const capacity = balance * lb;
  const limit = capacity * (1 + 1e-9);
  const longAbove = capacity - lb;
  const previous = input.previous ?? {};
  const units = buildUnits(items, prep, workerIndex, previous);
  for (const u of units) u.long = u.duration > longAbove;
  units.sort((a, b) => compareUnits(a, b, sets));
  const loads = new Float64Array(nw);
  const assigned = new Int32Array(items.length).fill(-1);
  const put = (members, w, duration2) => {
    for (const i of members) assigned[i] = w;
    loads[w] += duration2;
  };
  const scan = (set, keyHash, duration2) => {
    const list = sets[set].workers;
    const key = mixKey(keyHash);
    let best = -1;
    let bestScore = -1;
    let fallback = -1;
    let fallbackLoad = Infinity;
    let fallbackScore = -1;
    for (let k = 0; k < list.length; k++) {
      const j = list[k];
      const score = mixScore(key, workerMix[j]);
      const load = loads[j];
      if (load + duration2 <= limit) {
        if (score > bestScore) {
          best = j;
          bestScore = score;
        }
      } else if (best < 0 && (load < fallbackLoad || load === fallbackLoad && score > fallbackScore)) {
        fallback = j;
        fallbackLoad = load;
        fallbackScore = score;
      }
    }
    return best >= 0 ? best : -1 - fallback;
  };
  const rest = [];
  const returning = Array.from({ length: nw }, () => []);
  units.forEach((u, rank) => {
    u.rank = rank;
    if (u.previous >= 0) returning[u.previous].push(u);
  });
  const leaves = new Uint8Array(units.length);
  for (const list of returning) {
    let excess = -limit;
    for (const u of list) excess += u.duration;
    if (excess <= 0) continue;
    const asc = list.sort((a, b) => a.duration - b.duration || b.rank - a.rank);
    for (let hi = asc.length - 1; excess > 0 && hi >= 0; hi--) {
      let lo = 0;
      for (let top = hi + 1; lo < top; ) {
        const mid = lo + top >>> 1;
        if (asc[mid].duration < excess) lo = mid + 1;
        else top = mid;
      }
      if (lo <= hi) {
        leaves[asc[lo].rank] = 1;
        break;
      }
      leaves[asc[hi].rank] = 1;
      excess -= asc[hi].duration;
    }
  }
  for (const u of units) {
    if (u.previous >= 0 && !leaves[u.rank]) put(u.members, u.previous, u.duration);
    else rest.push(u);
  }
  for (const u of rest) {
    if (u.members.length > 1) {
      const w = scan(u.set, u.keyHash, u.duration);
      if (w >= 0) {
        put(u.members, w, u.duration);
        continue;
      }
      for (const i of u.members) {
        const item = items[i];
        const set = prep.setOf[i];
        const p = Object.hasOwn(previous, item.id) ? workerIndex.get(previous[item.id]) : void 0;
        if (p !== void 0 && sets[set].member[p] && loads[p] + item.duration <= limit) {
          put([i], p, item.duration);
        } else {
          const r2 = scan(set, hashString(item.affinityKey), item.duration);
          put([i], r2 >= 0 ? r2 : -1 - r2, item.duration);
        }
      }
      continue;
    }
    const r = scan(u.set, u.keyHash, u.duration);
    put(u.members, r >= 0 ? r : -1 - r, u.duration);
  }
  const assignments = {};
  for (let i = 0; i < items.length; i++) assignments[items[i].id] = workers[assigned[i]].id;
  const loadOut = {};
  for (let j = 0; j < nw; j++) loadOut[workers[j].id] = loads[j];
  return {
    assignments,
    loads: loadOut,
    capacity,
    lowerBound: lb,
    makespan: simulateMakespan(items, assignments, prep.graph)
  };
}

// src/plan/keys.ts
import crypto2 from "node:crypto";
import { posix as posix3 } from "node:path";

// src/plan/dockerignore.ts
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join as join3, posix as posix2 } from "node:path";

// src/plan/inputs.ts
import { lstatSync } from "node:fs";
import { join as join2 } from "node:path";
import picomatch from "picomatch";

// src/plan/file-index.ts
import crypto from "node:crypto";
import fs from "node:fs";
import { mkdir, readFile as readFile2, rename, unlink, writeFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { dirname as dirname2, join, sep } from "node:path";
import { Worker } from "node:worker_threads";
import zlib from "node:zlib";
function readDirListing(abs) {
  const keyed = [];
  for (const e of fs.readdirSync(abs, { withFileTypes: true })) {
    const type = e.isDirectory() ? "d" : e.isFile() ? "f" : e.isSymbolicLink() ? "l" : "";
    if (type) keyed.push({ key: type === "d" ? e.name + "/" : e.name, name: e.name, type });
  }
  keyed.sort((a, b) => a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
  return { names: keyed.map((k) => k.name), types: keyed.map((k) => k.type).join("") };
}
var INDEX_FILE = "file-index.bin";
var LEGACY_INDEX_FILE = "file-digests.json";
var DAY_MS = 864e5;
var KEEP_DAYS = 30;
var S_IFMT = 61440;
var S_IFLNK = 40960;
var MAGIC = 1229341252;
var VERSION = 2;
var BOM = 16909060;
var HEADER_BYTES = 32;
var align8 = (n) => n + 7 & ~7;
var crcTable;
var crc32 = typeof zlib.crc32 === "function" ? (data) => zlib.crc32(data) : (data) => {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c2 = n;
      for (let k = 0; k < 8; k++) c2 = c2 & 1 ? 3988292384 ^ c2 >>> 1 : c2 >>> 1;
      crcTable[n] = c2 >>> 0;
    }
  }
  let c = 4294967295;
  for (let i = 0; i < data.length; i++) c = crcTable[(c ^ data[i]) & 255] ^ c >>> 8;
  return (c ^ 4294967295) >>> 0;
};
function layout(f, d, pathBytes, dirBytes) {
  const fnum = HEADER_BYTES;
  const fmeta = fnum + f * 32;
  const foff = fmeta + f * 8;
  const fdig = align8(foff + (f + 1) * 4);
  const dnum = align8(fdig + f * 32);
  const dmeta = dnum + d * 32;
  const ptext = dmeta + d * 16;
  const dtext = ptext + pathBytes;
  return { fnum, fmeta, foff, fdig, dnum, dmeta, ptext, dtext, end: dtext + dirBytes };
}
var StoredIndex = class _StoredIndex {
  constructor(files, fnum, fmeta, foff, ptext, fdig, dirs, dnum, dmeta, dtext) {
    this.files = files;
    this.fnum = fnum;
    this.fmeta = fmeta;
    this.foff = foff;
    this.ptext = ptext;
    this.fdig = fdig;
    this.dirs = dirs;
    this.dnum = dnum;
    this.dmeta = dmeta;
    this.dtext = dtext;
  }
  files;
  fnum;
  fmeta;
  foff;
  ptext;
  fdig;
  dirs;
  dnum;
  dmeta;
  dtext;
  /** Parses `data`; undefined when it is not a well-formed index of this version. */
  static parse(data) {
    if (data.length < HEADER_BYTES) return void 0;
    let buf = data;
    if (buf.byteOffset % 8 !== 0) {
      buf = Buffer.alloc(data.length);
      data.copy(buf);
    }
    const head = new Uint32Array(buf.buffer, buf.byteOffset, HEADER_BYTES / 4);
    if (head[0] !== MAGIC || head[1] !== VERSION || head[2] !== BOM) return void 0;
    const [f, d, pathBytes, dirBytes] = [head[3], head[4], head[5], head[6]];
    const at = layout(f, d, pathBytes, dirBytes);
    if (at.end !== buf.length || crc32(buf.subarray(HEADER_BYTES)) !== head[7]) return void 0;
    const u32 = (off, n) => new Uint32Array(buf.buffer, buf.byteOffset + off, n);
    const f64 = (off, n) => new Float64Array(buf.buffer, buf.byteOffset + off, n);
    const ptext = buf.toString("utf8", at.ptext, at.dtext);
    const dtext = buf.toString("utf8", at.dtext, at.end);
    if (Buffer.byteLength(ptext) !== pathBytes || Buffer.byteLength(dtext) !== dirBytes) {
      return void 0;
    }
    const foff = u32(at.foff, f + 1);
    const dmeta = u32(at.dmeta, d * 4);
    if (foff[0] !== 0 || foff[f] !== ptext.length) return void 0;
    for (let i = 0; i < f; i++) if (foff[i] > foff[i + 1]) return void 0;
    let start = 0;
    for (let k = 0; k < d; k++) {
      const types = start + dmeta[4 * k + 1];
      const n = dmeta[4 * k + 2];
      const end = dmeta[4 * k + 3];
      if (end < types + n || n === 0 && end !== types) return void 0;
      if (!/^[dfl]*$/.test(dtext.slice(types, types + n))) return void 0;
      start = end;
    }
    if (start !== dtext.length) return void 0;
    return new _StoredIndex(
      f,
      f64(at.fnum, f * 4),
      u32(at.fmeta, f * 2),
      foff,
      ptext,
      buf.subarray(at.fdig, at.fdig + f * 32),
      d,
      f64(at.dnum, d * 4),
      dmeta,
      dtext
    );
  }
  path(i) {
    return this.ptext.slice(this.foff[i], this.foff[i + 1]);
  }
  /** Whether file entry i is `path`, without making a string. */
  isPath(i, path) {
    const start = this.foff[i];
    return this.foff[i + 1] - start === path.length && this.ptext.startsWith(path, start);
  }
  /** All digests as one hex string, made on first use (slicing it beats a conversion each). */
  hex;
  digest(i) {
    this.hex ??= this.fdig.toString("hex");
    return this.hex.slice(i * 64, i * 64 + 64);
  }
  dirStart(k) {
    return k === 0 ? 0 : this.dmeta[4 * k - 1];
  }
  dirPath(k) {
    const start = this.dirStart(k);
    return this.dtext.slice(start, start + this.dmeta[4 * k + 1]);
  }
  /** The listing of directory k (undefined if its record is damaged). */
  dirListing(k) {
    const types = this.dirStart(k) + this.dmeta[4 * k + 1];
    const n = this.dmeta[4 * k + 2];
    const names = n === 0 ? [] : this.dtext.slice(types + n, this.dmeta[4 * k + 3]).split("\0");
    if (names.length !== n) return void 0;
    return { names, types: this.dtext.slice(types, types + n) };
  }
};
function encodeIndex(stored, files, dirs) {
  const ptext = files.map((o) => o.path).join("");
  const dparts = [];
  for (const o of dirs) {
    const listing = o.e ? o.e.listing : stored.dirListing(o.k);
    dparts.push(o.path, listing.types, listing.names.join("\0"));
  }
  const dtext = dparts.join("");
  const pathBytes = Buffer.byteLength(ptext, "utf8");
  const dirBytes = Buffer.byteLength(dtext, "utf8");
  const f = files.length;
  const d = dirs.length;
  const at = layout(f, d, pathBytes, dirBytes);
  const buf = Buffer.alloc(at.end);
  const u32 = (off2, n) => new Uint32Array(buf.buffer, buf.byteOffset + off2, n);
  const f64 = (off2, n) => new Float64Array(buf.buffer, buf.byteOffset + off2, n);
  const head = u32(0, 8);
  head.set([MAGIC, VERSION, BOM, f, d, pathBytes, dirBytes, 0]);
  const fnum = f64(at.fnum, f * 4);
  const fmeta = u32(at.fmeta, f * 2);
  const foff = u32(at.foff, f + 1);
  let off = 0;
  for (let j = 0; j < f; j++) {
    const o = files[j];
    foff[j] = off;
    off += o.path.length;
    if (o.e) {
      fnum[4 * j] = o.e.size;
      fnum[4 * j + 1] = o.e.mtimeMs;
      fnum[4 * j + 2] = o.e.ctimeMs;
      fnum[4 * j + 3] = o.e.ino;
      fmeta[2 * j] = o.e.mode;
      fmeta[2 * j + 1] = o.e.day;
      buf.write(o.e.digest, at.fdig + 32 * j, 32, "hex");
    } else {
      const s = stored;
      fnum.set(s.fnum.subarray(4 * o.i, 4 * o.i + 4), 4 * j);
      fmeta.set(s.fmeta.subarray(2 * o.i, 2 * o.i + 2), 2 * j);
      s.fdig.copy(buf, at.fdig + 32 * j, 32 * o.i, 32 * o.i + 32);
    }
  }
  foff[f] = off;
  const dnum = f64(at.dnum, d * 4);
  const dmeta = u32(at.dmeta, d * 4);
  off = 0;
  for (let k = 0; k < d; k++) {
    const o = dirs[k];
    const len = dparts[3 * k].length + dparts[3 * k + 1].length + dparts[3 * k + 2].length;
    if (o.e) {
      dnum[4 * k] = o.e.mtimeMs;
      dnum[4 * k + 1] = o.e.ctimeMs;
      dnum[4 * k + 2] = o.e.ino;
      dnum[4 * k + 3] = o.e.dev;
      dmeta[4 * k] = o.e.day;
    } else {
      dnum.set(stored.dnum.subarray(4 * o.k, 4 * o.k + 4), 4 * k);
      dmeta[4 * k] = stored.dmeta[4 * o.k];
    }
    dmeta[4 * k + 1] = o.path.length;
    dmeta[4 * k + 2] = dparts[3 * k + 1].length;
    off += len;
    dmeta[4 * k + 3] = off;
  }
  buf.write(ptext, at.ptext, pathBytes, "utf8");
  buf.write(dtext, at.dtext, dirBytes, "utf8");
  head[7] = crc32(buf.subarray(HEADER_BYTES));
  return buf;
}
var byPath = (a, b) => a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
var HASH_PATH_SOURCE = String.raw`function hashPath(fs, crypto, buf, abs, marginMs, startMs) {
  for (let attempt = 0; ; attempt++) {
    const st = fs.lstatSync(abs);
    let digest;
    let after;
    if (st.isSymbolicLink()) {
      const target = fs.readlinkSync(abs, { encoding: 'buffer' });
      digest = crypto.createHash('sha256').update(target).digest('hex');
      after = fs.lstatSync(abs);
    } else if (st.isFile()) {
      const fd = fs.openSync(abs, 'r');
      try {
        const h = crypto.createHash('sha256');
        let n;
        while ((n = fs.readSync(fd, buf, 0, buf.length, null)) > 0) h.update(buf.subarray(0, n));
        digest = h.digest('hex');
        after = fs.fstatSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    } else {
      const err = new Error('not a regular file or symlink: ' + abs);
      err.code = 'EISDIR';
      throw err;
    }
    const stable =
      after.ino === st.ino && after.size === st.size && after.mode === st.mode &&
      after.mtimeMs === st.mtimeMs && after.ctimeMs === st.ctimeMs;
    if (!stable && attempt < 3) continue;
    return {
      size: st.size,
      mode: st.mode,
      mtimeMs: st.mtimeMs,
      ctimeMs: st.ctimeMs,
      ino: st.ino,
      digest,
      trusted: stable && startMs - Math.max(st.mtimeMs, st.ctimeMs) > marginMs,
      retries: attempt,
    };
  }
}`;
var WORKER_SOURCE = `'use strict';
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const crypto = require('node:crypto');
const buf = Buffer.allocUnsafe(1 << 20);
const hashPath = ${HASH_PATH_SOURCE};
parentPort.on('message', (job) => {
  const margin = job.marginMs;
  const start = job.startMs;
  const results = job.paths.map((p) => {
    try {
      return hashPath(fs, crypto, buf, p, margin, start);
    } catch (e) {
      return { error: String(e && e.message), code: e && e.code };
    }
  });
  parentPort.postMessage(results);
});`;
var localHashFn;
var localBuf;
function hashLocal(abs, marginMs, startMs) {
  localHashFn ??= new Function(`return ${HASH_PATH_SOURCE};`)();
  localBuf ??= Buffer.allocUnsafe(1 << 20);
  try {
    return localHashFn(fs, crypto, localBuf, abs, marginMs, startMs);
  } catch (e) {
    const err = e;
    return { error: String(err.message), ...err.code ? { code: err.code } : {} };
  }
}
var yieldToEventLoop = () => new Promise((resolve2) => setImmediate(resolve2));
var HashPool = class {
  constructor(size, marginMs) {
    this.size = size;
    this.marginMs = marginMs;
  }
  size;
  marginMs;
  workers = [];
  queue = [];
  closed = false;
  /** Set when a worker cannot even be created. */
  broken = false;
  /** Hashes `paths` (absolute); `startMs` is the wall-clock time hashing started. */
  async hash(paths, startMs) {
    if (this.closed) throw new Error("file index is closed");
    if (paths.length === 0) return [];
    this.start();
    const results = new Array(paths.length);
    const size = Math.max(16, Math.min(256, Math.ceil(paths.length / 64)));
    let open = 0;
    let resolveAll;
    const all = new Promise((resolve2) => resolveAll = resolve2);
    for (let i = 0; i < paths.length; i += size) {
      const offset = i;
      open++;
      this.queue.push({
        paths: paths.slice(i, i + size),
        startMs,
        done: (r) => {
          for (let k = 0; k < r.length; k++) results[offset + k] = r[k];
          if (--open === 0) resolveAll();
        }
      });
    }
    this.dispatch();
    while (this.queue.length > 0) {
      const b = this.queue.shift();
      b.done(b.paths.map((p) => hashLocal(p, this.marginMs, b.startMs)));
      await yieldToEventLoop();
      if (this.closed) throw new Error("file index closed while hashing");
    }
    await all;
    return results;
  }
  start() {
    while (this.workers.length < this.size && !this.broken) {
      let worker;
      try {
        worker = new Worker(WORKER_SOURCE, { eval: true });
      } catch {
        this.broken = true;
        return;
      }
      const pw = { worker, online: false, batch: void 0 };
      const w = pw.worker;
      w.unref();
      w.on("online", () => {
        pw.online = true;
        this.dispatch();
      });
      w.on("message", (results) => {
        const b = pw.batch;
        pw.batch = void 0;
        this.dispatch();
        b?.done(results);
      });
      w.on("error", () => this.lose(pw));
      w.on("exit", () => this.lose(pw));
      this.workers.push(pw);
    }
  }
  /** Gives every idle online worker a batch; unreferences the idle ones. */
  dispatch() {
    for (const pw of this.workers) {
      if (!pw.online || pw.batch) continue;
      const b = this.queue.shift();
      if (!b) {
        pw.worker.unref();
        continue;
      }
      pw.batch = b;
      pw.worker.ref();
      pw.worker.postMessage({
        paths: b.paths,
        marginMs: this.marginMs,
        startMs: b.startMs
      });
    }
  }
  /** A worker failed or exited: drop it and finish its batch here. */
  lose(pw) {
    const i = this.workers.indexOf(pw);
    if (i < 0) return;
    this.workers.splice(i, 1);
    pw.online = false;
    const b = pw.batch;
    pw.batch = void 0;
    if (b && !this.closed) b.done(b.paths.map((p) => hashLocal(p, this.marginMs, b.startMs)));
  }
  async close() {
    this.closed = true;
    const abandoned = [...this.queue.splice(0), ...this.workers.map((pw) => pw.batch)];
    const ws = this.workers.splice(0);
    for (const b of abandoned) {
      b?.done(b.paths.map(() => ({ error: "file index closed while hashing" })));
    }
    await Promise.all(ws.map((pw) => pw.worker.terminate()));
  }
};
var PARALLEL_LSTAT_MIN = 512;
var SYNC_LSTAT_SHARE = 0.35;
var cores;
var parallelism = () => cores ??= availableParallelism();
function defaultThreads() {
  return Math.max(0, Math.min(3, availableParallelism() - 1));
}
var FileIndex = class _FileIndex {
  constructor(root, opts) {
    this.root = root;
    this.opts = opts;
    this.file = join(opts.cacheDir ?? join(root, ".dist-build", "index"), INDEX_FILE);
    this.prefix = root.endsWith(sep) ? root : root + sep;
    this.threads = opts.threads ?? defaultThreads();
    this.poolMinFiles = opts.poolMinFiles ?? 64;
    this.marginMs = opts.racyMs ?? 2e3;
    this.now = opts.now ?? Date.now;
  }
  root;
  opts;
  /** Absolute path of the index file. */
  file;
  stats = {
    hits: 0,
    hashed: 0,
    bytesHashed: 0,
    retries: 0,
    loaded: false,
    dirHits: 0,
    dirReads: 0
  };
  /** The index as loaded (entries superseded or dropped since are flagged in `dead`). */
  stored;
  dead = new Uint8Array(0);
  /** Stored path -> entry number; built on the first lookup the sorted merge cannot answer. */
  storedMap;
  /** Stored directories: path -> entry number. */
  storedDirs = /* @__PURE__ */ new Map();
  deadDirs = new Uint8Array(0);
  /** Verdicts of {@link verify} per stored directory: 0 none, 1 unchanged, 2 changed or gone. */
  dirCheck = new Uint8Array(0);
  /** Entries made in this session (they take precedence over stored ones). */
  added = /* @__PURE__ */ new Map();
  addedDirs = /* @__PURE__ */ new Map();
  /** `root` with a trailing separator: absolute paths by concatenation. */
  prefix;
  threads;
  poolMinFiles;
  marginMs;
  now;
  pool;
  dirty = false;
  /** Opens the index for `root`, loading the stored one unless it is missing, corrupt or `fresh`. */
  static async open(root, opts = {}) {
    const index = new _FileIndex(root, opts);
    if (!opts.fresh) await index.load();
    return index;
  }
  async load() {
    let stored;
    try {
      stored = StoredIndex.parse(await readFile2(this.file));
    } catch {
      return;
    }
    if (!stored) return;
    this.stored = stored;
    this.dead = new Uint8Array(stored.files);
    this.deadDirs = new Uint8Array(stored.dirs);
    for (let k = 0; k < stored.dirs; k++) this.storedDirs.set(stored.dirPath(k), k);
    this.stats.loaded = true;
  }
  /** Number of entries currently held. */
  get size() {
    let n = this.added.size;
    const s = this.stored;
    if (s) {
      for (let i = 0; i < s.files; i++) if (!this.dead[i]) n++;
    }
    return n;
  }
  /** The live stored entry number of `path` (-1: none); `hint` is where a sorted merge stands. */
  findStored(path, hint) {
    const s = this.stored;
    if (!s) return -1;
    if (hint < s.files && s.isPath(hint, path)) return this.dead[hint] ? -1 : hint;
    if (!this.storedMap) {
      this.storedMap = /* @__PURE__ */ new Map();
      for (let i2 = 0; i2 < s.files; i2++) this.storedMap.set(s.path(i2), i2);
    }
    const i = this.storedMap.get(path);
    return i === void 0 || this.dead[i] ? -1 : i;
  }
  /**
   * Checks every stored directory listing against the file system, in one burst of `lstat` calls
   * (shared with the thread pool, see {@link lstatEach}). The next {@link listDir} of each takes
   * the verdict instead of checking again, so call it right before walking, as computeCacheKeys
   * does. Without it, every listDir checks its directory itself; the results are the same.
   * (Files are checked by {@link getMany}, in a burst of their own: only those asked for.)
   */
  async verify() {
    const s = this.stored;
    if (!s) return;
    const dirs = [];
    const abs = [];
    for (let k = 0; k < s.dirs; k++) {
      if (this.deadDirs[k]) continue;
      dirs.push(k);
      const rel = s.dirPath(k);
      abs.push(rel === "" ? this.root : this.prefix + rel);
    }
    const dirCheck = this.dirCheck = new Uint8Array(s.dirs);
    await this.lstatEach(
      abs.length,
      (j) => abs[j],
      (j, st) => {
        const k = dirs[j];
        dirCheck[k] = st && st.isDirectory() && this.sameDir(k, st) ? 1 : 2;
      }
    );
  }
  /** Whether stored file i has the identity `st`. */
  sameFile(i, st) {
    const n = this.stored.fnum;
    return st.mtimeMs === n[4 * i + 1] && st.ctimeMs === n[4 * i + 2] && st.size === n[4 * i] && st.ino === n[4 * i + 3] && st.mode === this.stored.fmeta[2 * i];
  }
  /** Whether stored directory k has the identity `st`. */
  sameDir(k, st) {
    const n = this.stored.dnum;
    return n[4 * k] === st.mtimeMs && n[4 * k + 1] === st.ctimeMs && n[4 * k + 2] === st.ino && n[4 * k + 3] === st.dev;
  }
  /** Marks stored file i as used today (the day is stored with it). */
  touch(i, today) {
    const meta = this.stored.fmeta;
    if (meta[2 * i + 1] !== today) {
      meta[2 * i + 1] = today;
      this.dirty = true;
    }
  }
  /** Forgets `path` (a file that is gone, or changed too recently to be stored). */
  forget(path, storedAt) {
    if (this.added.delete(path)) this.dirty = true;
    if (storedAt >= 0 && !this.dead[storedAt]) {
      this.dead[storedAt] = 1;
      this.dirty = true;
    }
  }
  /**
   * The listing of directory `rel` (relative to the root, `''` = the root itself): from the index
   * when the directory's identity is unchanged, else read from disk (and stored unless racy).
   * Throws like `readdir` (missing directory, not a directory, no permission).
   */
  listDir(rel) {
    const today = Math.floor(this.now() / DAY_MS);
    const s = this.stored;
    const k = this.storedDirs.get(rel) ?? -1;
    if (k >= 0 && this.dirCheck[k] === 1) {
      this.dirCheck[k] = 0;
      const listing2 = this.deadDirs[k] || this.addedDirs.has(rel) ? void 0 : s.dirListing(k);
      if (listing2) {
        this.stats.dirHits++;
        this.touchDir(k, today);
        return listing2;
      }
    }
    const abs = rel === "" ? this.root : this.prefix + rel;
    const st = fs.lstatSync(abs, { throwIfNoEntry: false });
    if (!st || !st.isDirectory()) return readDirListing(abs);
    const added = this.addedDirs.get(rel);
    if (added && added.mtimeMs === st.mtimeMs && added.ctimeMs === st.ctimeMs && added.ino === st.ino && added.dev === st.dev) {
      this.stats.dirHits++;
      return added.listing;
    }
    if (k >= 0 && !this.deadDirs[k] && !added && this.sameDir(k, st)) {
      const listing2 = s.dirListing(k);
      if (listing2) {
        this.stats.dirHits++;
        this.touchDir(k, today);
        return listing2;
      }
    }
    this.stats.dirReads++;
    const listing = readDirListing(abs);
    if (k >= 0 && !this.deadDirs[k]) {
      this.deadDirs[k] = 1;
      this.dirty = true;
    }
    if (this.now() - Math.max(st.mtimeMs, st.ctimeMs) > this.marginMs) {
      const { mtimeMs, ctimeMs, ino, dev } = st;
      this.addedDirs.set(rel, { mtimeMs, ctimeMs, ino, dev, day: today, listing });
      this.dirty = true;
    } else if (this.addedDirs.delete(rel)) {
      this.dirty = true;
    }
    return listing;
  }
  /**
   * Calls `fn(j, lstat of pathOf(j))` for every j < n (undefined on any error), in no particular
   * order.
   * Checking a warm tree is a burst of `lstat` calls of a few microseconds of system time each:
   * with more than one core, the calling thread does the first part synchronously while libuv's
   * thread pool does the rest (all queued up front, so that the pool works while the calling
   * thread does). Measured on 2 cores: ~20% less wall time than all on the calling thread. Each
   * Stats object is dropped at once (keeping thousands alive makes every scavenge copy them).
   */
  async lstatEach(n, pathOf, fn) {
    const split = n >= PARALLEL_LSTAT_MIN && parallelism() > 1 ? Math.ceil(n * SYNC_LSTAT_SHARE) : n;
    let pending;
    if (split < n) {
      pending = new Promise((resolve2) => {
        let left = n - split;
        for (let j = split; j < n; j++) {
          fs.lstat(pathOf(j), (err, st) => {
            fn(j, err ? void 0 : st);
            if (--left === 0) resolve2();
          });
        }
      });
    }
    for (let j = 0; j < split; j++) {
      let st;
      try {
        st = fs.lstatSync(pathOf(j), { throwIfNoEntry: false });
      } catch {
      }
      fn(j, st);
    }
    await pending;
  }
  touchDir(k, today) {
    const meta = this.stored.dmeta;
    if (meta[4 * k] !== today) {
      meta[4 * k] = today;
      this.dirty = true;
    }
  }
  /** SHA-256 (hex) of the contents of `path` (relative to the root). */
  async digest(path) {
    return (await this.get(path)).digest;
  }
  /** Digest and metadata of one file. */
  async get(path) {
    return (await this.getMany([path]))[0];
  }
  /**
   * Digests and metadata of `paths` (relative to the root, in the same order). Throws when a path
   * is missing or is not a regular file or symlink. Fastest for sorted lists (as the walk returns).
   */
  async getMany(paths) {
    const out = new Array(paths.length);
    const today = Math.floor(this.now() / DAY_MS);
    const s = this.stored;
    const hasAdded = this.added.size > 0;
    const entries = hasAdded ? new Array(paths.length) : [];
    const stored = new Int32Array(paths.length).fill(-1);
    const check = [];
    const miss = new Uint8Array(paths.length);
    let cursor = 0;
    for (let i = 0; i < paths.length; i++) {
      const path = paths[i];
      const entry = hasAdded ? this.added.get(path) : void 0;
      if (entry) {
        entries[i] = entry;
        check.push(i);
        continue;
      }
      const k = this.findStored(path, cursor);
      stored[i] = k;
      if (k < 0) {
        miss[i] = 1;
        continue;
      }
      cursor = k + 1;
      check.push(i);
    }
    const verify = (i, st) => {
      const entry = hasAdded ? entries[i] : void 0;
      if (!st) {
        miss[i] = 1;
      } else if (entry) {
        if (st.mtimeMs === entry.mtimeMs && st.ctimeMs === entry.ctimeMs && st.size === entry.size && st.ino === entry.ino && st.mode === entry.mode) {
          this.stats.hits++;
          out[i] = toDigest(paths[i], entry.mode, entry.size, entry.digest);
        } else {
          miss[i] = 1;
        }
      } else {
        const k = stored[i];
        if (this.sameFile(k, st)) {
          this.stats.hits++;
          this.touch(k, today);
          out[i] = toDigest(paths[i], st.mode, st.size, s.digest(k));
        } else {
          miss[i] = 1;
        }
      }
    };
    await this.lstatEach(
      check.length,
      (j) => this.prefix + paths[check[j]],
      (j, st) => verify(check[j], st)
    );
    const missIdx = [];
    const missStored = [];
    for (let i = 0; i < paths.length; i++) {
      if (miss[i]) {
        missIdx.push(i);
        missStored.push(stored[i]);
      }
    }
    if (missIdx.length === 0) return out;
    const abs = missIdx.map((i) => this.prefix + paths[i]);
    const startMs = this.now();
    let results;
    if (this.threads > 0 && missIdx.length >= this.poolMinFiles) {
      this.pool ??= new HashPool(this.threads, this.marginMs);
      results = await this.pool.hash(abs, startMs);
    } else {
      results = abs.map((p) => hashLocal(p, this.marginMs, startMs));
    }
    const errors = [];
    missIdx.forEach((i, j) => {
      const path = paths[i];
      const r = results[j];
      const k = missStored[j];
      if ("error" in r) {
        this.forget(path, k);
        errors.push(r.code === "ENOENT" ? `input file "${path}" does not exist` : r.error);
        return;
      }
      const size = r.size;
      this.stats.hashed++;
      this.stats.bytesHashed += size;
      this.stats.retries += r.retries;
      this.opts.onHash?.(path);
      if (r.trusted) {
        const { mtimeMs, ctimeMs, ino, mode, digest } = r;
        this.added.set(path, { size, mtimeMs, ctimeMs, ino, mode, digest, day: today });
        if (k >= 0) this.dead[k] = 1;
        this.dirty = true;
      } else {
        this.forget(path, k);
      }
      out[i] = toDigest(path, r.mode, size, r.digest);
    });
    if (errors.length > 0) {
      throw new Error(
        errors.length === 1 ? errors[0] : `${errors.length} errors: ${errors.join("; ")}`
      );
    }
    return out;
  }
  /**
   * Writes the index if anything changed (temp file + rename). Returns false when it could not be
   * written; that is not an error, the next run is just colder.
   */
  async save() {
    if (!this.dirty) return true;
    const minDay = Math.floor(this.now() / DAY_MS) - KEEP_DAYS;
    const s = this.stored;
    const files = [];
    const dirs = [];
    if (s) {
      for (let i = 0; i < s.files; i++) {
        if (!this.dead[i] && s.fmeta[2 * i + 1] >= minDay && !this.added.has(s.path(i))) {
          files.push({ path: s.path(i), i });
        }
      }
      for (const [path, k] of this.storedDirs) {
        if (!this.deadDirs[k] && s.dmeta[4 * k] >= minDay && !this.addedDirs.has(path)) {
          if (s.dirListing(k)) dirs.push({ path, k });
        }
      }
    }
    for (const [path, e] of this.added) if (e.day >= minDay) files.push({ path, i: -1, e });
    for (const [path, e] of this.addedDirs) if (e.day >= minDay) dirs.push({ path, k: -1, e });
    files.sort(byPath);
    const data = encodeIndex(s, files, dirs);
    const tmp = `${this.file}.${process.pid}.${crypto.randomBytes(6).toString("hex")}.tmp`;
    try {
      await mkdir(dirname2(this.file), { recursive: true });
      await writeFile(tmp, data);
      await rename(tmp, this.file);
      this.dirty = false;
    } catch {
      await unlink(tmp).catch(() => void 0);
      return false;
    }
    await unlink(join(dirname2(this.file), LEGACY_INDEX_FILE)).catch(() => void 0);
    return true;
  }
  /** Stops the worker threads (idle ones never keep the process alive, but tests like it). */
  async close() {
    const pool = this.pool;
    this.pool = void 0;
    await pool?.close();
  }
};
function toDigest(path, mode, size, digest) {
  const symlink = (mode & S_IFMT) === S_IFLNK;
  return {
    path,
    kind: symlink ? "symlink" : "file",
    digest,
    size,
    executable: !symlink && (mode & 73) !== 0
  };
}

// src/plan/inputs.ts
var SKIPPED_UNLESS_NAMED = [".git", "node_modules"];
var ALWAYS_SKIPPED = /* @__PURE__ */ new Set([".dist-build"]);
var DirCache = class {
  constructor(store) {
    this.store = store;
  }
  store;
  map = /* @__PURE__ */ new Map();
  /** The listing of `rel` (relative to `root`, `''` = the root). */
  read(root, rel) {
    const key = root + "\0" + rel;
    let listing = this.map.get(key);
    if (!listing) {
      if (this.store && this.store.root === root) listing = this.store.listDir(rel);
      else listing = readDirListing(rel === "" ? root : join2(root, rel));
      this.map.set(key, listing);
    }
    return listing;
  }
};
var TYPE_DIR = 100;
var SURROGATE = /[\ud800-\udfff]/;
function sortByteOrder(list) {
  if (!list.some((s) => SURROGATE.test(s))) return [...list].sort();
  return list.map((s) => ({ s, b: Buffer.from(s, "utf8") })).sort((x, y) => Buffer.compare(x.b, y.b)).map((x) => x.s);
}
function compareByteOrder(a, b) {
  if (a === b) return 0;
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}
function normalizePattern(source, p) {
  let s = p;
  while (s.startsWith("./")) s = s.slice(2);
  s = s.replace(/\/+$/, "").replace(/\/{2,}/g, "/");
  if (s === ".") s = "";
  if (s.startsWith("/")) throw new Error(`input pattern "${source}" must be relative to the root`);
  if (s.split("/").some((seg) => seg === ".." || seg === ".")) {
    throw new Error(
      `input pattern "${source}" must stay inside the root (no "." or ".." segments)`
    );
  }
  return s;
}
function compile(source, text) {
  const pattern = normalizePattern(source, text);
  const scan = picomatch.scan(pattern, { unescape: true });
  const isGlob = scan.isGlob;
  const base = scan.base;
  const test = pattern === "" ? () => true : picomatch(pattern, { dot: true, windows: false });
  const segments = pattern.split("/");
  const named = new Set(SKIPPED_UNLESS_NAMED.filter((n) => segments.includes(n)));
  return { source, pattern, base, isGlob, test, named };
}
function expandInputs(root, patterns, opts = {}) {
  const dirs = opts.dirCache ?? new DirCache();
  const positives = [];
  const negatives = [];
  for (const p of patterns) {
    if (p.startsWith("!")) negatives.push(compile(p, p.slice(1)));
    else positives.push(compile(p, p));
  }
  const excluded = (rel) => negatives.some((n) => n.test(rel));
  const found = positives.length === 1 ? [] : /* @__PURE__ */ new Set();
  const unmatched = [];
  for (const pat of positives) {
    let hits = 0;
    const hit = Array.isArray(found) ? (rel) => {
      found.push(rel);
      hits++;
    } : (rel) => {
      found.add(rel);
      hits++;
    };
    const skipDir = (name) => ALWAYS_SKIPPED.has(name) || SKIPPED_UNLESS_NAMED.includes(name) && !pat.named.has(name);
    const skipFile = (name) => name === ".git" && !pat.named.has(name);
    const addAll = (rel) => {
      const { names, types } = dirs.read(root, rel);
      const prefix = rel === "" ? "" : rel + "/";
      for (let i = 0; i < names.length; i++) {
        const name = names[i];
        if (types.charCodeAt(i) === TYPE_DIR) {
          if (!skipDir(name)) addAll(prefix + name);
        } else if (!skipFile(name)) hit(prefix + name);
      }
    };
    const walk = (rel) => {
      const { names, types } = dirs.read(root, rel);
      const prefix = rel === "" ? "" : rel + "/";
      for (let i = 0; i < names.length; i++) {
        const name = names[i];
        const child = prefix + name;
        if (types.charCodeAt(i) === TYPE_DIR) {
          if (skipDir(name)) continue;
          if (pat.test(child)) addAll(child);
          else walk(child);
        } else if (!skipFile(name) && pat.test(child)) {
          hit(child);
        }
      }
    };
    const start = startingPoint(root, pat.base);
    if (start === "dir") {
      if (!pat.isGlob || pat.pattern === "") addAll(pat.base);
      else if (pat.base !== "" && pat.test(pat.base)) addAll(pat.base);
      else walk(pat.base);
    } else if (start === "leaf") {
      if (!pat.isGlob || pat.test(pat.base)) hit(pat.base);
    }
    if (hits === 0) unmatched.push(pat.source);
  }
  let files;
  if (negatives.length === 0) files = Array.isArray(found) ? found : [...found];
  else {
    files = [];
    for (const f of found) if (!isExcluded(f, excluded)) files.push(f);
  }
  return { files: sortByteOrder(files), unmatched };
}
function isExcluded(rel, excluded) {
  if (excluded(rel)) return true;
  for (let i = rel.indexOf("/"); i !== -1; i = rel.indexOf("/", i + 1)) {
    if (excluded(rel.slice(0, i))) return true;
  }
  return false;
}
function startingPoint(root, base) {
  if (base === "") return "dir";
  const parts = base.split("/");
  let abs = root;
  for (let i = 0; i < parts.length; i++) {
    abs = join2(abs, parts[i]);
    let st;
    try {
      st = lstatSync(abs);
    } catch {
      return "none";
    }
    const last = i === parts.length - 1;
    if (st.isDirectory()) {
      if (ALWAYS_SKIPPED.has(parts[i])) return "none";
      if (last) return "dir";
      continue;
    }
    if (!last) return "none";
    return st.isFile() || st.isSymbolicLink() ? "leaf" : "none";
  }
  return "none";
}

// src/plan/dockerignore.ts
var UTF8_BOM = "\uFEFF";
function cleanPath(p) {
  if (p === "") return ".";
  const rooted = p.startsWith("/");
  const out = [];
  for (const seg of p.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") {
      if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
      else if (!rooted) out.push("..");
      continue;
    }
    out.push(seg);
  }
  const joined = out.join("/");
  if (rooted) return "/" + joined;
  return joined === "" ? "." : joined;
}
function parseDockerignore(text) {
  const patterns = [];
  const lines = text.split("\n");
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  lines.forEach((raw, i) => {
    let line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (i === 0 && line.startsWith(UTF8_BOM)) line = line.slice(1);
    if (line.startsWith("#")) return;
    let pattern = goTrimSpace(line);
    if (pattern === "") return;
    const invert = pattern.startsWith("!");
    if (invert) pattern = goTrimSpace(pattern.slice(1));
    if (pattern.length > 0) {
      pattern = cleanPath(pattern);
      if (pattern.length > 1 && pattern.startsWith("/")) pattern = pattern.slice(1);
    }
    patterns.push(invert ? "!" + pattern : pattern);
  });
  return patterns;
}
function goTrimSpace(s) {
  return s.replace(/^[\s\u0085]+|[\s\u0085]+$/gu, "");
}
var JS_SYNTAX = /* @__PURE__ */ new Set([..."^$\\.*+?()[]{}|/"]);
var Pattern = class {
  constructor(pattern, exclusion) {
    this.pattern = pattern;
    this.exclusion = exclusion;
    const { type, source } = compile2(pattern);
    this.matchType = type;
    if (type === "regexp") {
      try {
        this.regexp = new RegExp(source, "u");
      } catch (err) {
        throw new Error(`invalid .dockerignore pattern "${pattern}": ${err.message}`, {
          cause: err
        });
      }
    }
  }
  pattern;
  exclusion;
  matchType;
  regexp;
  test(path) {
    const p = this.pattern;
    switch (this.matchType) {
      case "exact":
        return path === p;
      case "prefix":
        return path.startsWith(p.slice(0, -2));
      // strip the trailing `**`
      case "suffix": {
        const suffix = p.slice(2);
        if (path.endsWith(suffix)) return true;
        return suffix.startsWith("/") && path === suffix.slice(1);
      }
      case "regexp":
        return this.regexp.test(path);
    }
  }
};
function compile2(pattern) {
  const chars = [...pattern];
  const bad = (why) => new Error(`invalid .dockerignore pattern "${pattern}": ${why}`);
  let re = "^";
  let type = "exact";
  for (let i = 0, iter = 0; i < chars.length; iter++) {
    const ch = chars[i++];
    if (ch === "*") {
      if (chars[i] === "*") {
        i++;
        if (chars[i] === "/") i++;
        if (i >= chars.length) {
          if (type === "exact") type = "prefix";
          else {
            re += ".*";
            type = "regexp";
          }
        } else {
          re += "(?:.*/)?";
          type = "regexp";
        }
        if (iter === 0) type = "suffix";
      } else {
        re += "[^/]*";
        type = "regexp";
      }
    } else if (ch === "?") {
      re += "[^/]";
      type = "regexp";
    } else if (ch === "\\") {
      const next = chars[i++];
      if (next === void 0) throw bad("trailing backslash");
      re += escapeLiteral(next);
      type = "regexp";
    } else if (ch === "[") {
      let cls = "[";
      if (chars[i] === "^") {
        cls += "^";
        i++;
      }
      let ranges = 0;
      const endpoint = () => {
        let c = chars[i];
        if (c === void 0 || c === "-" || c === "]") throw bad("malformed character class");
        if (c === "\\") {
          c = chars[++i];
          if (c === void 0) throw bad("malformed character class");
        }
        i++;
        return escapeInClass(c);
      };
      for (; ; ) {
        if (chars[i] === "]" && ranges > 0) {
          i++;
          break;
        }
        cls += endpoint();
        if (chars[i] === "-") {
          i++;
          cls += "-" + endpoint();
        }
        ranges++;
      }
      re += cls + "]";
      type = "regexp";
    } else {
      re += ch === "^" ? "^" : escapeLiteral(ch);
    }
  }
  if (type === "regexp") re += "$";
  return { type, source: re };
}
function escapeInClass(ch) {
  return "\\]-^[".includes(ch) ? "\\" + ch : ch;
}
function escapeLiteral(ch) {
  return JS_SYNTAX.has(ch) ? "\\" + ch : ch;
}
var DockerignoreMatcher = class _DockerignoreMatcher {
  patterns;
  /** True when at least one pattern is an exception (`!`). */
  exclusions;
  /** True when every exception is a plain path (after dropping a trailing `/**` or `/*`). */
  onlyPrefixExceptions;
  /** `patterns` as returned by {@link parseDockerignore}; throws on an invalid pattern. */
  constructor(patterns) {
    const list = [];
    for (const raw of patterns) {
      let p = goTrimSpace(raw);
      if (p === "") continue;
      p = cleanPath(p);
      let exclusion = false;
      if (p.startsWith("!")) {
        if (p.length === 1) throw new Error('illegal exclusion pattern: "!"');
        exclusion = true;
        p = p.slice(1);
      }
      list.push(new Pattern(p, exclusion));
    }
    this.patterns = list;
    this.exclusions = list.some((p) => p.exclusion);
    this.onlyPrefixExceptions = list.every(
      (p) => !p.exclusion || !/[*[\]?^\\]/.test(withoutTrailingGlob(p.pattern))
    );
  }
  /** Parses and compiles a `.dockerignore` text. */
  static fromText(text) {
    return new _DockerignoreMatcher(parseDockerignore(text));
  }
  /**
   * Whether `path` (slash-separated, relative to the context) is excluded, evaluating every parent
   * directory as well (moby `MatchesOrParentMatches`). For a walk, prefer
   * {@link matchesUsingParentResults}, which is what BuildKit does.
   */
  matches(path) {
    const file = cleanPath(path);
    if (file === ".") return false;
    const parent = posix2.dirname(file);
    const parentDirs = parent === "." ? [] : parent.split("/");
    let matched = false;
    for (const pattern of this.patterns) {
      if (pattern.exclusion !== matched) continue;
      let match = pattern.test(file);
      for (let i = 0; !match && i < parentDirs.length; i++) {
        match = pattern.test(parentDirs.slice(0, i + 1).join("/"));
      }
      if (match) matched = !pattern.exclusion;
    }
    return matched;
  }
  /**
   * moby `MatchesUsingParentResults`: like {@link matches}, but a pattern that matched the parent
   * directory (`parent`, from the parent's own call) counts as matching without re-testing, and a
   * pattern skipped for the parent is only tested against `path` itself. Without `parent`, parent
   * directories are tested as in {@link matches}.
   */
  matchesUsingParentResults(path, parent) {
    const file = cleanPath(path);
    const info = new Array(this.patterns.length).fill(false);
    let matched = false;
    this.patterns.forEach((pattern, i) => {
      let match = parent !== void 0 && parent.length > 0 ? parent[i] : false;
      if (!match) {
        if (pattern.exclusion !== matched) return;
        match = pattern.test(file);
        if (!match && (parent === void 0 || parent.length === 0)) {
          const dir = posix2.dirname(file);
          if (dir !== ".") {
            const parts = dir.split("/");
            for (let k = 0; !match && k < parts.length; k++) {
              match = pattern.test(parts.slice(0, k + 1).join("/"));
            }
          }
        }
      }
      info[i] = match;
      if (match) matched = !pattern.exclusion;
    });
    return { excluded: matched, info };
  }
  /**
   * fsutil's shortcut: an excluded directory is entered only if an exception might re-include
   * something below it (any exception with wildcards, or one whose path lies under `dir`).
   */
  mustEnterExcludedDir(dir) {
    if (!this.onlyPrefixExceptions) return true;
    if (!this.exclusions) return false;
    const dirSlash = dir + "/";
    return this.patterns.some(
      (p) => p.exclusion && (withoutTrailingGlob(p.pattern) + "/").startsWith(dirSlash)
    );
  }
};
function withoutTrailingGlob(p) {
  let s = p;
  if (s.endsWith("/**")) s = s.slice(0, -3);
  if (s.endsWith("/*")) s = s.slice(0, -2);
  return s;
}
function findDockerignore(root, context, dockerfile) {
  const candidates = [dockerfile + ".dockerignore", posix2.join(context, ".dockerignore")];
  for (const c of candidates) {
    try {
      if (statSync(join3(root, c)).isFile()) return posix2.normalize(c);
    } catch {
    }
  }
  return null;
}
function listDockerContext(root, spec, opts = {}) {
  const skip = new Set(opts.skipDirs ?? [".dist-build"]);
  const context = posix2.normalize(spec.context);
  const dockerfile = posix2.normalize(spec.file);
  const ctxAbs = join3(root, context);
  const missing = [];
  const contextOk = statSync(ctxAbs, { throwIfNoEntry: false })?.isDirectory() ?? false;
  if (!contextOk) missing.push(spec.context);
  const dockerfileOk = statSync(join3(root, dockerfile), { throwIfNoEntry: false })?.isFile() ?? false;
  if (!dockerfileOk) missing.push(spec.file);
  const ignoreFile = findDockerignore(root, context, dockerfile);
  const matcher = ignoreFile ? DockerignoreMatcher.fromText(readFileSync(join3(root, ignoreFile), "utf8")) : void 0;
  const prefix = context === "." ? "" : context + "/";
  const out = [];
  const walk = (relDir, parentInfo) => {
    const abs = relDir === "" ? ctxAbs : join3(ctxAbs, relDir);
    for (const entry of readdirSync(abs, { withFileTypes: true })) {
      const rel = relDir === "" ? entry.name : relDir + "/" + entry.name;
      const isDir = entry.isDirectory();
      if (isDir && skip.has(entry.name)) continue;
      let info;
      let excluded = false;
      if (matcher) {
        const r = matcher.matchesUsingParentResults(rel, parentInfo);
        info = r.info;
        excluded = r.excluded;
        if (excluded && isDir && !matcher.mustEnterExcludedDir(rel)) continue;
      }
      if (isDir) walk(rel, info);
      else if (!excluded && (entry.isFile() || entry.isSymbolicLink())) out.push(prefix + rel);
    }
  };
  if (contextOk) walk("", void 0);
  if (dockerfileOk && !out.includes(dockerfile)) out.push(dockerfile);
  return { files: sortByteOrder(out), ignoreFile, missing };
}

// src/plan/keys.ts
var KEY_FORMAT = "dist-build/key/v1";
var RawJson = class {
  constructor(text) {
    this.text = text;
  }
  text;
};
function canonicalJson(value) {
  if (value instanceof RawJson) return value.text;
  if (value === null || typeof value === "boolean") return String(value);
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value))
      throw new Error(`canonical JSON takes integers only: ${value}`);
    return String(value);
  }
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) return "[" + value.map(canonicalJson).join(",") + "]";
  const keys = Object.keys(value).sort(compareByteOrder);
  return "{" + keys.map((k) => JSON.stringify(k) + ":" + canonicalJson(value[k])).join(",") + "}";
}
function sortedPairs(record) {
  return Object.keys(record).sort(compareByteOrder).map((k) => [k, record[k]]);
}
function unitFiles(config, inv, dirCache) {
  const globs = expandInputs(config.root, inv.inputs, { dirCache });
  if (!inv.docker) return globs;
  const ctx = listDockerContext(config.root, inv.docker);
  const all = /* @__PURE__ */ new Set([...ctx.files, ...globs.files]);
  return { files: sortByteOrder([...all]), unmatched: [...ctx.missing, ...globs.unmatched] };
}
function dependencyOrder(units) {
  const byId = /* @__PURE__ */ new Map();
  for (const u of units) {
    if (byId.has(u.id)) throw new Error(`unit "${u.id}" is listed twice`);
    byId.set(u.id, u);
  }
  const state = /* @__PURE__ */ new Map();
  const order = [];
  const visit = (u, path) => {
    const s = state.get(u.id);
    if (s === "done") return;
    if (s === "visiting") {
      const cycle = [...path.slice(path.indexOf(u.id)), u.id];
      throw new Error(`needs cycle: ${cycle.join(" -> ")}`);
    }
    state.set(u.id, "visiting");
    for (const n of u.needs) {
      const dep = byId.get(n);
      if (!dep) throw new Error(`unit "${u.id}" needs unknown unit "${n}"`);
      visit(dep, [...path, u.id]);
    }
    state.set(u.id, "done");
    order.push(u);
  };
  for (const u of units) visit(u, []);
  return order;
}
function keyDocument(inv, unit, inputs, needs) {
  const doc = {
    format: KEY_FORMAT,
    kind: inv.docker ? "docker" : "run",
    platform: unit.platform ?? null,
    env: sortedPairs(inv.env),
    outputs: sortByteOrder([...new Set(inv.outputs)]),
    // arrays of strings only: JSON.stringify output is canonical
    inputs: new RawJson(
      JSON.stringify(
        inputs.map((f) => [
          f.path,
          f.kind === "symlink" ? "l" : f.executable ? "x" : "f",
          f.digest
        ])
      )
    ),
    needs
  };
  if (inv.docker) {
    const d = inv.docker;
    const context = normRel(d.context);
    doc.docker = {
      context,
      dockerfile: relativePosix(context, normRel(d.file)),
      target: d.target ?? null,
      buildArgs: sortedPairs(d.buildArgs)
    };
  } else {
    doc.run = inv.run ?? "";
  }
  return doc;
}
function normRel(p) {
  return posix3.normalize(p).replace(/\/+$/, "") || ".";
}
function relativePosix(from, to) {
  const a = from === "." || from === "" ? [] : from.split("/");
  const b = to.split("/");
  let i = 0;
  while (i < a.length && i < b.length - 1 && a[i] === b[i]) i++;
  return [...a.slice(i).map(() => ".."), ...b.slice(i)].join("/");
}
async function computeCacheKeys(config, units, opts = {}) {
  const invocations = new Map(config.invocations.map((i) => [i.name, i]));
  const order = dependencyOrder(units);
  for (const u of order) {
    if (!invocations.has(u.invocation)) {
      throw new Error(`unit "${u.id}" belongs to unknown invocation "${u.invocation}"`);
    }
  }
  const index = opts.index ?? await FileIndex.open(config.root, { cacheDir: opts.cacheDir });
  const filesByInvocation = /* @__PURE__ */ new Map();
  let list;
  let got;
  try {
    await index.verify();
    const dirCache = new DirCache(index);
    for (const u of order) {
      const inv = invocations.get(u.invocation);
      if (!filesByInvocation.has(inv.name)) {
        filesByInvocation.set(inv.name, unitFiles(config, inv, dirCache));
      }
    }
    const lists = [...filesByInvocation.values()];
    if (lists.length === 1) list = lists[0].files;
    else {
      const allPaths = /* @__PURE__ */ new Set();
      for (const { files } of lists) for (const f of files) allPaths.add(f);
      list = [...allPaths];
    }
    got = await index.getMany(list);
    if (!opts.index) await index.save();
  } finally {
    if (!opts.index) await index.close();
  }
  let digests;
  const result = /* @__PURE__ */ new Map();
  for (const u of order) {
    const inv = invocations.get(u.invocation);
    const { files, unmatched } = filesByInvocation.get(inv.name);
    let inputs = got;
    if (files !== list) {
      digests ??= new Map(list.map((p, i) => [p, got[i]]));
      inputs = files.map((f) => digests.get(f));
    }
    const needs = [...new Set(u.needs)].sort(compareByteOrder).map((id) => [id, result.get(id).cacheKey]);
    const doc = canonicalJson(keyDocument(inv, u, inputs, needs));
    const cacheKey = "sha256:" + crypto2.createHash("sha256").update(doc, "utf8").digest("hex");
    result.set(u.id, {
      cacheKey,
      files: inputs.length,
      bytes: inputs.reduce((n, f) => n + f.size, 0),
      unmatched: [...unmatched]
    });
  }
  return result;
}

// src/plan/plan.ts
var PlanInputError = class extends Error {
  name = "PlanInputError";
};
function numberedWorkers(n) {
  if (!Number.isInteger(n) || n < 1)
    throw new PlanInputError(`worker count must be a whole number >= 1, got ${n}`);
  return Array.from({ length: n }, (_, i) => ({ id: `worker-${i + 1}` }));
}
function expectedDuration(config, unit, history) {
  const h = history?.durations[unit.id] ?? history?.durations[unit.invocation];
  if (h !== void 0 && h > 0) return h;
  const inv = config.invocations.find((i) => i.name === unit.invocation);
  return inv?.estimate ?? config.placement.defaultDuration;
}
var round2 = (x) => Math.round(x * 1e3) / 1e3;
async function planBuild(config, opts = {}) {
  const units = expandUnits(config);
  const workers = opts.workers ?? numberedWorkers(workerCount(config, units.length));
  const ids = /* @__PURE__ */ new Set();
  for (const w of workers) {
    if (ids.has(w.id)) throw new PlanInputError(`worker id "${w.id}" is given twice`);
    ids.add(w.id);
  }
  const durations = new Map(units.map((u) => [u.id, expectedDuration(config, u, opts.history)]));
  const items = units.map((u) => ({
    id: u.id,
    affinityKey: u.affinityKey,
    duration: durations.get(u.id),
    needs: u.needs,
    labels: u.labels,
    ...u.platform === void 0 ? {} : { platform: u.platform }
  }));
  const result = place({
    items,
    workers,
    balance: config.placement.balance,
    ...opts.previous ? { previous: opts.previous.assignments } : {}
  });
  const keys = opts.keys === false ? void 0 : await computeCacheKeys(config, units, opts.cacheDir ? { cacheDir: opts.cacheDir } : {});
  if (keys && opts.onWarning) {
    const warned = /* @__PURE__ */ new Set();
    for (const u of units) {
      for (const pattern of keys.get(u.id)?.unmatched ?? []) {
        const message = `invocations.${u.invocation}: "${pattern}" matches no file`;
        if (!warned.has(message)) opts.onWarning(message);
        warned.add(message);
      }
    }
  }
  const unitsOut = {};
  for (const u of units) {
    const cacheKey = keys?.get(u.id)?.cacheKey;
    unitsOut[u.id] = {
      invocation: u.invocation,
      duration: round2(durations.get(u.id)),
      affinityKey: u.affinityKey,
      ...cacheKey ? { cacheKey } : {}
    };
  }
  return {
    workers: workers.map((w) => w.id),
    matrix: { include: workers.map((w) => ({ worker: w.id })) },
    assignments: result.assignments,
    estimate: {
      makespan: round2(result.makespan),
      lowerBound: round2(result.lowerBound),
      capacity: round2(result.capacity)
    },
    units: unitsOut
  };
}
async function readJson(file, what) {
  let text;
  try {
    text = await readFile3(file, "utf8");
  } catch (err) {
    throw new PlanInputError(
      `${file}: cannot read ${what}: ${err.code ?? err.message}`
    );
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new PlanInputError(`${file}: ${what} is not valid JSON: ${err.message}`);
  }
}
var isObject = (v) => typeof v === "object" && v !== null && !Array.isArray(v);
async function readHistory(file) {
  const data = await readJson(file, "history");
  if (!isObject(data) || !isObject(data.durations)) {
    throw new PlanInputError(`${file}: expected {"durations": {"<invocation>": <seconds>}}`);
  }
  for (const [k, v] of Object.entries(data.durations)) {
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0) {
      throw new PlanInputError(
        `${file}: durations.${k}: expected a number of seconds >= 0, got ${JSON.stringify(v)}`
      );
    }
  }
  return { durations: data.durations };
}
async function readPrevious(file) {
  const data = await readJson(file, "previous plan");
  if (!isObject(data) || !isObject(data.assignments)) {
    throw new PlanInputError(
      `${file}: expected the JSON printed by \`dist-build plan --json\` (an "assignments" object)`
    );
  }
  for (const [k, v] of Object.entries(data.assignments)) {
    if (typeof v !== "string")
      throw new PlanInputError(`${file}: assignments.${k}: expected a worker id string`);
  }
  return { assignments: data.assignments };
}
async function readMembers(file) {
  const data = await readJson(file, "members");
  const list = isObject(data) && Array.isArray(data.workers) ? data.workers : data;
  if (!Array.isArray(list))
    throw new PlanInputError(`${file}: expected a list of {"worker_id", "annotations"} records`);
  return list.map((r, i) => {
    if (!isObject(r) || typeof (r.worker_id ?? r.id) !== "string") {
      throw new PlanInputError(
        `${file}: [${i}]: expected {"worker_id": "<id>", "annotations": {...}}`
      );
    }
    const ann = r.annotations;
    if (ann !== void 0 && (!isObject(ann) || Object.values(ann).some((v) => typeof v !== "string"))) {
      throw new PlanInputError(`${file}: [${i}].annotations: expected string values`);
    }
    return {
      id: String(r.worker_id ?? r.id),
      ...ann ? { annotations: ann } : {}
    };
  });
}

// src/version.ts
var VERSION2 = "0.1.0";
export {
  ConfigError,
  NoEligibleWorkerError,
  PlanInputError,
  VERSION2 as VERSION,
  computeCacheKeys,
  configSchema,
  expandUnits,
  expectedDuration,
  formatDuration,
  formatIssue,
  loadConfig,
  numberedWorkers,
  parseConfig,
  parseDuration,
  place,
  planBuild,
  readHistory,
  readMembers,
  readPrevious,
  workerCount
};
