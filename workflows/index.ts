export { sessionWorkflow } from './session';
export { cleanupWorkflow } from './cleanup';
export { volumeWorkflow } from './volume';
