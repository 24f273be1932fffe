export { sessionWorkflow } from './session';
export { cleanupWorkflow } from './cleanup';
