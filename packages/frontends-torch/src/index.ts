/**
 * @q/frontends-torch: PyTorch files into q IR. Safe, allow-listed unpickling only (nothing in a
 * pickle is ever executed); state dicts from torch.save zip and legacy files; TorchScript archives
 * (traced models) to graphs; Knight's model-definition route for weight-only files.
 */
export { UnsafePickleError } from "./errors.js";
export {
  Unpickler, unpickle, allowedGlobals, storagePersistentLoad, isTuple,
  StorageType, StorageRef, TensorRef, TorchObject, TorchDType, AllowedGlobal, type UnpickleOptions,
} from "./pickle.js";
export { openTorchFile, parseTorchBytes, materialize, isZip, type TorchArchive, type ArchiveKind } from "./container.js";
export { readStateDict, stateDictOf, findStateDict, scriptModuleTensors, type ReadStateDictOptions } from "./state-dict.js";
export { readTorchScript, torchScriptToGraph, loadClasses, supportedTorchOps, type ReadTorchScriptOptions } from "./torchscript.js";
export { parseTorchScriptSource, moduleOfCodePath, type ClassDef, type Method, type Stmt, type Expr } from "./ts-parse.js";
export { buildFromDefinition, type BuildFunction, type DefinitionOptions } from "./definition.js";
export { readTorch, type ReadTorchOptions } from "./read.js";
