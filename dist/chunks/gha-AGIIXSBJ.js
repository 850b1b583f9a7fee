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
} from "./chunk-KVMFMC3H.js";
import "./chunk-QPI3LQR2.js";
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
