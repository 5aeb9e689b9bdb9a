// A job's worker thread starts here: the engine is TypeScript run through tsx, and a worker does not
// inherit the loader the main thread registered, so it registers its own before loading the job code.
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');
