// Filled in by the integration harness: creates the run's template database and Redis prefix.
export default async function setup(): Promise<void> {}
