/** A mistake in how the CLI was called: exit code 2 with the message. */
export class UsageError extends Error {}
