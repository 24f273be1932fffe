/** The control plane's health check of an agent lives with the backends that run agents. */
export { agentIsServing } from '../lib/compute/agent-health';
