//! The Conversation Context Service in Redis, shared by every replica: a
//! hash of the bot's namespaces (`context-namespaces`), and a hash per
//! scope record (`context`: the bot's global scope, a user's, the user
//! scope of a conversation without a user, a conversation's) whose fields
//! are `namespace:property` and whose values are `generation expiresMs
//! json`. A run's writes are made by one Lua script, in order, against
//! Redis's clock, so replicas agree on expiry and two runs never interleave.
//!
//! A record's key expires with its last property when every property has
//! a time to live, and lives on otherwise (as the product's properties
//! without a TTL do). A property's expiry and its namespace's generation
//! are checked on every read, so an expired property or one of a deleted
//! namespace is never seen, even before its record is next written (which
//! drops it).

use std::collections::HashMap;

use patchbay_credentials::BoxFuture;
use patchbay_engine::script::{
    CONTEXT_MAX_NAMESPACES, CONTEXT_MAX_PROPERTIES, CONTEXT_MAX_RECORD_BYTES, ContextScope,
    ContextScopeData, ContextSnapshot, ContextWrite,
};
use patchbay_engine::{ContextKey, ContextRefusal, ContextStore, ContextStoreError, RecordId};
use redis::RedisError;

use crate::Redis;

/// Makes a run's writes. KEYS: the namespaces, then the global, user and
/// conversation records (a key the turn does not have is never touched).
/// ARGV: the most namespaces, properties per namespace and bytes per
/// record, then five per write: kind (`register`, `delete-namespace`,
/// `set`, `delete`, `delete-all`), scope (`g`, `u`, `c`), namespace,
/// property, value (a register's TTL in seconds, or `-` to keep the
/// namespace's). Returns the refusals, as index (1-based), reason pairs.
///
/// Every record the writes touch is read once, cleaned (expired
/// properties and those of namespaces not registered in their generation
/// dropped) and changed in memory; then what changed is written, the
/// writes that take memory first (so a Redis over `maxmemory` refuses the
/// script before it changed anything), the removals after.
const WRITE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local max_ns, max_props, max_bytes = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local reg, reg_count, last_gen = {}, 0, 0
local flat = redis.call('HGETALL', KEYS[1])
for i = 1, #flat, 2 do
  local f, v = flat[i], flat[i + 1]
  if f == 'gen' then
    last_gen = tonumber(v)
  elseif string.sub(f, 1, 2) == 'n:' then
    local sp = string.find(v, ' ', 1, true)
    reg[string.sub(f, 3)] = {tonumber(string.sub(v, 1, sp - 1)), tonumber(string.sub(v, sp + 1))}
    reg_count = reg_count + 1
  end
end
local reg_changed, gen_changed = {}, false
local scope_key = {g = KEYS[2], u = KEYS[3], c = KEYS[4]}
local records = {}
-- A field's namespace and property; a value's generation, expiry and JSON.
local function split_field(f)
  local colon = string.find(f, ':', 1, true)
  if not colon then return nil end
  return string.sub(f, 1, colon - 1), string.sub(f, colon + 1)
end
local function split_value(v)
  local a = string.find(v, ' ', 1, true)
  if not a then return nil end
  local b = string.find(v, ' ', a + 1, true)
  if not b then return nil end
  return tonumber(string.sub(v, 1, a - 1)), tonumber(string.sub(v, a + 1, b - 1)), #v - b
end
local function record(scope)
  local r = records[scope]
  if r then return r end
  r = {fields = {}, held = {}, count = {}, bytes = 0, dirty = false}
  local flat = redis.call('HGETALL', scope_key[scope])
  for i = 1, #flat, 2 do
    local f, v = flat[i], flat[i + 1]
    r.held[f] = v
    local ns = split_field(f)
    local gen, expires, json = split_value(v)
    local info = ns and reg[ns]
    if info and gen == info[1] and (expires == 0 or expires > now) then
      r.fields[f] = v
      r.count[ns] = (r.count[ns] or 0) + 1
      r.bytes = r.bytes + #f + json
    else
      r.dirty = true
    end
  end
  records[scope] = r
  return r
end
local function remove(r, f)
  local v = r.fields[f]
  if not v then return end
  local ns = split_field(f)
  local _, _, json = split_value(v)
  r.fields[f] = nil
  r.count[ns] = r.count[ns] - 1
  r.bytes = r.bytes - #f - json
  r.dirty = true
end
local function remove_namespace(r, ns)
  local prefix = ns .. ':'
  for f in pairs(r.fields) do
    if string.sub(f, 1, #prefix) == prefix then remove(r, f) end
  end
end
local refused = {}
local function refuse(i, reason)
  table.insert(refused, i)
  table.insert(refused, reason)
end
local n = (#ARGV - 3) / 5
for i = 1, n do
  local base = 3 + (i - 1) * 5
  local kind, scope, ns, prop, value = ARGV[base + 1], ARGV[base + 2], ARGV[base + 3], ARGV[base + 4], ARGV[base + 5]
  if kind == 'register' then
    local info = reg[ns]
    if info then
      if value ~= '-' then
        info[2] = tonumber(value)
        reg_changed[ns] = true
      end
    elseif reg_count >= max_ns then
      refuse(i, 'the bot has ' .. max_ns .. ' namespaces, the most it may')
    else
      last_gen = last_gen + 1
      gen_changed = true
      reg[ns] = {last_gen, value == '-' and 0 or tonumber(value)}
      reg_count = reg_count + 1
      reg_changed[ns] = true
    end
  elseif kind == 'delete-namespace' then
    if reg[ns] then
      reg[ns] = nil
      reg_count = reg_count - 1
      reg_changed[ns] = true
    end
    for _, s in ipairs({'g', 'u', 'c'}) do
      if scope_key[s] ~= '' then remove_namespace(record(s), ns) end
    end
  elseif scope_key[scope] == nil or scope_key[scope] == '' then
    refuse(i, 'the turn has no such scope')
  elseif kind == 'set' then
    local info = reg[ns]
    if not info then
      refuse(i, 'namespace `' .. ns .. '` is no longer registered (another turn deleted it)')
    else
      local r = record(scope)
      local f = ns .. ':' .. prop
      local old = r.fields[f]
      local old_bytes = 0
      if old then
        local _, _, json = split_value(old)
        old_bytes = #f + json
      end
      local bytes = r.bytes - old_bytes + #f + #value
      if not old and (r.count[ns] or 0) >= max_props then
        refuse(i, 'namespace `' .. ns .. '` holds ' .. max_props .. ' properties in the scope, the most it may')
      elseif bytes > max_bytes then
        refuse(i, 'the scope would hold ' .. bytes .. ' bytes, more than the ' .. max_bytes .. ' it may')
      else
        local expires = 0
        if info[2] > 0 then expires = now + info[2] * 1000 end
        if not old then r.count[ns] = (r.count[ns] or 0) + 1 end
        r.fields[f] = string.format('%.0f %.0f ', info[1], expires) .. value
        r.bytes = bytes
        r.dirty = true
      end
    end
  elseif kind == 'delete' then
    remove(record(scope), ns .. ':' .. prop)
  elseif kind == 'delete-all' then
    remove_namespace(record(scope), ns)
  end
end
-- Writes that take memory first, then removals: a Redis over maxmemory
-- refuses the first, before anything changed.
local function sliced(command, key, list)
  -- unpack's results go on Lua's stack (8000 at most).
  for first = 1, #list, 1000 do
    redis.call(command, key, unpack(list, first, math.min(first + 999, #list)))
  end
end
local registered, unregistered = {}, {}
for ns in pairs(reg_changed) do
  local info = reg[ns]
  if info then
    table.insert(registered, 'n:' .. ns)
    table.insert(registered, string.format('%.0f %.0f', info[1], info[2]))
  else
    table.insert(unregistered, 'n:' .. ns)
  end
end
if gen_changed then
  table.insert(registered, 'gen')
  table.insert(registered, string.format('%.0f', last_gen))
end
sliced('HSET', KEYS[1], registered)
for scope, r in pairs(records) do
  if r.dirty then
    local changed = {}
    for f, v in pairs(r.fields) do
      if r.held[f] ~= v then
        table.insert(changed, f)
        table.insert(changed, v)
      end
    end
    sliced('HSET', scope_key[scope], changed)
  end
end
sliced('HDEL', KEYS[1], unregistered)
for scope, r in pairs(records) do
  if r.dirty then
    local key = scope_key[scope]
    local gone = {}
    for f in pairs(r.held) do
      if r.fields[f] == nil then table.insert(gone, f) end
    end
    sliced('HDEL', key, gone)
    -- The record lives as long as its longest-lived property.
    local forever, last = false, 0
    for _, v in pairs(r.fields) do
      local _, expires = split_value(v)
      if expires == 0 then forever = true elseif expires > last then last = expires end
    end
    if forever then
      redis.call('PERSIST', key)
    elseif last > 0 then
      redis.call('PEXPIREAT', key, string.format('%.0f', last))
    end
  end
end
return refused";

/// Context data shared by every replica that uses the same Redis and
/// prefix. Like the state store, treat that Redis as holding user data.
pub struct RedisContextStore {
    redis: Redis,
    write: redis::Script,
}

impl std::fmt::Debug for RedisContextStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisContextStore")
            .field("redis", &self.redis)
            .finish_non_exhaustive()
    }
}

impl RedisContextStore {
    pub(crate) fn new(redis: Redis) -> Self {
        Self {
            redis,
            write: redis::Script::new(WRITE),
        }
    }

    fn namespaces_key(&self, key: &ContextKey) -> String {
        self.redis.key("context-namespaces", &[&key.bot])
    }

    /// The record of `scope` for `key`: `None` when the turn has not that
    /// scope.
    fn record_key(&self, key: &ContextKey, scope: ContextScope) -> Option<String> {
        let parts = match key.record(scope)? {
            RecordId::Global => vec![key.bot.as_str(), "global"],
            RecordId::User(id) => return Some(self.redis.key("context", &[&key.bot, "user", &id])),
            RecordId::ConversationUser(id) => {
                return Some(
                    self.redis
                        .key("context", &[&key.bot, "conversation-user", &id]),
                );
            }
            RecordId::Conversation(id) => {
                return Some(self.redis.key("context", &[&key.bot, "conversation", &id]));
            }
        };
        Some(self.redis.key("context", &parts))
    }

    fn failed(&self, what: &str, error: &RedisError) {
        tracing::warn!(redis = ?self.redis, %error, "{what} failed");
    }
}

const SCOPES: [ContextScope; 3] = [
    ContextScope::Global,
    ContextScope::User,
    ContextScope::Conversation,
];

/// What a load read: Redis's clock (ms), the namespaces' hash, each
/// record's hash.
struct Loaded {
    now: u64,
    namespaces: HashMap<String, String>,
    records: Vec<HashMap<String, String>>,
}

impl Loaded {
    /// The replies of `TIME`, the namespaces' `HGETALL`, then each
    /// record's.
    fn read(mut replies: Vec<redis::Value>) -> Result<Self, ContextStoreError> {
        let unreadable = |error: redis::ParsingError| {
            ContextStoreError::Unavailable(format!("reading context data: {error}"))
        };
        let records = replies
            .split_off(2.min(replies.len()))
            .into_iter()
            .map(|reply| redis::from_redis_value(reply).map_err(unreadable))
            .collect::<Result<Vec<_>, _>>()?;
        let mut replies = replies.into_iter();
        let mut next = || {
            replies.next().ok_or_else(|| {
                ContextStoreError::Unavailable("reading context data: no reply".to_owned())
            })
        };
        let (seconds, micros): (u64, u64) = redis::from_redis_value(next()?).map_err(unreadable)?;
        let namespaces = redis::from_redis_value(next()?).map_err(unreadable)?;
        Ok(Self {
            now: seconds * 1000 + micros / 1000,
            namespaces,
            records,
        })
    }
}

/// A value's generation, expiry and JSON.
fn split_value(value: &str) -> Option<(u64, u64, &str)> {
    let (generation, rest) = value.split_once(' ')?;
    let (expires, json) = rest.split_once(' ')?;
    Some((generation.parse().ok()?, expires.parse().ok()?, json))
}

impl ContextStore for RedisContextStore {
    fn load<'a>(
        &'a self,
        key: &'a ContextKey,
    ) -> BoxFuture<'a, Result<ContextSnapshot, ContextStoreError>> {
        Box::pin(async move {
            let mut pipe = redis::pipe();
            pipe.atomic().cmd("TIME").hgetall(self.namespaces_key(key));
            let scopes: Vec<ContextScope> = SCOPES
                .into_iter()
                .filter(|scope| key.record(*scope).is_some())
                .collect();
            for scope in &scopes {
                if let Some(record) = self.record_key(key, *scope) {
                    pipe.hgetall(record);
                }
            }
            let mut connection = self.redis.connection();
            let replies: Vec<redis::Value> =
                pipe.query_async(&mut connection).await.map_err(|error| {
                    self.failed("loading context data", &error);
                    ContextStoreError::Unavailable(format!("loading context data: {error}"))
                })?;
            let Loaded {
                now,
                namespaces,
                records,
            } = Loaded::read(replies)?;
            let registered: HashMap<&str, (u64, u64)> = namespaces
                .iter()
                .filter_map(|(field, value)| {
                    let name = field.strip_prefix("n:")?;
                    let (generation, ttl) = value.split_once(' ')?;
                    Some((name, (generation.parse().ok()?, ttl.parse().ok()?)))
                })
                .collect();
            let mut snapshot = ContextSnapshot {
                loaded: true,
                namespaces: registered
                    .iter()
                    .map(|(name, (_, ttl))| ((*name).to_owned(), *ttl))
                    .collect(),
                ..ContextSnapshot::default()
            };
            for (scope, fields) in scopes.into_iter().zip(records) {
                let mut data = ContextScopeData::new();
                for (field, value) in &fields {
                    let Some((namespace, property)) = field.split_once(':') else {
                        continue;
                    };
                    let Some((generation, expires, json)) = split_value(value) else {
                        continue;
                    };
                    let live = registered
                        .get(namespace)
                        .is_some_and(|(current, _)| *current == generation)
                        && (expires == 0 || expires > now);
                    if live {
                        data.entry(namespace.to_owned())
                            .or_default()
                            .insert(property.to_owned(), json.to_owned());
                    }
                }
                match scope {
                    ContextScope::Global => snapshot.global = data,
                    ContextScope::User => snapshot.user = Some(data),
                    ContextScope::Conversation => snapshot.conversation = Some(data),
                }
            }
            Ok(snapshot)
        })
    }

    fn write<'a>(
        &'a self,
        key: &'a ContextKey,
        writes: &'a [ContextWrite],
    ) -> BoxFuture<'a, Result<Vec<ContextRefusal>, ContextStoreError>> {
        Box::pin(async move {
            let mut invocation = self.write.key(self.namespaces_key(key));
            for scope in SCOPES {
                // A scope the turn does not have: an empty key name the
                // script never touches.
                invocation.key(self.record_key(key, scope).unwrap_or_default());
            }
            invocation
                .arg(CONTEXT_MAX_NAMESPACES)
                .arg(CONTEXT_MAX_PROPERTIES)
                .arg(CONTEXT_MAX_RECORD_BYTES);
            for write in writes {
                let scope_arg = |scope: &ContextScope| match scope {
                    ContextScope::Global => "g",
                    ContextScope::User => "u",
                    ContextScope::Conversation => "c",
                };
                let (kind, scope, property, value) = match write {
                    ContextWrite::RegisterNamespace { ttl_seconds, .. } => (
                        "register",
                        "g",
                        "",
                        ttl_seconds.map_or_else(|| "-".to_owned(), |ttl| ttl.to_string()),
                    ),
                    ContextWrite::DeleteNamespace { .. } => {
                        ("delete-namespace", "g", "", String::new())
                    }
                    ContextWrite::Set {
                        scope,
                        property,
                        value,
                        ..
                    } => ("set", scope_arg(scope), property.as_str(), value.clone()),
                    ContextWrite::Delete {
                        scope, property, ..
                    } => ("delete", scope_arg(scope), property.as_str(), String::new()),
                    ContextWrite::DeleteAll { scope, .. } => {
                        ("delete-all", scope_arg(scope), "", String::new())
                    }
                };
                invocation
                    .arg(kind)
                    .arg(scope)
                    .arg(write.namespace())
                    .arg(property)
                    .arg(value);
            }
            let mut connection = self.redis.connection();
            let refused: Vec<redis::Value> = invocation
                .invoke_async(&mut connection)
                .await
                .map_err(|error| {
                    self.failed("writing context data", &error);
                    let reason = format!("writing context data: {error}");
                    // An error reply or a refused connection: nothing
                    // was written (the script checks before it writes).
                    if error.is_connection_refusal() || error.code().is_some() {
                        ContextStoreError::Unavailable(reason)
                    } else {
                        ContextStoreError::OutcomeUnknown(reason)
                    }
                })?;
            let mut refusals = Vec::new();
            let mut replies = refused.into_iter();
            while let (Some(index), Some(reason)) = (replies.next(), replies.next()) {
                let index: usize = redis::from_redis_value(index).unwrap_or(1);
                let reason: String = redis::from_redis_value(reason).unwrap_or_default();
                refusals.push(ContextRefusal {
                    index: index.saturating_sub(1),
                    reason,
                });
            }
            Ok(refusals)
        })
    }
}
