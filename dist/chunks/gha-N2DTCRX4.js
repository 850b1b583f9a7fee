import { createRequire as __dbCreateRequire } from 'node:module'; const require = __dbCreateRequire(import.meta.url);
import {
  GHA_CACHE_PATH,
  GHA_KEY_FORMAT,
  GhaStore,
  createGhaStore,
  ghaKeyPart,
  ghaKeyPrefix,
  ghaKeySlotPart,
  ghaNewKey,
  ghaSaveScope,
  ghaScopePrefix,
  ghaSuperseded,
  preloadActionsCache
} from "./chunk-TORZUAHS.js";
import "./chunk-TO7YD2V7.js";
import "./chunk-7FDW4MNB.js";
export {
  GHA_CACHE_PATH,
  GHA_KEY_FORMAT,
  GhaStore,
  createGhaStore,
  ghaKeyPart,
  ghaKeyPrefix,
  ghaKeySlotPart,
  ghaNewKey,
  ghaSaveScope,
  ghaScopePrefix,
  ghaSuperseded,
  preloadActionsCache
};
