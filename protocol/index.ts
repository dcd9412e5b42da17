export * from './topics.ts';
export * from './messages.ts';
export * from './http.ts';
export * from './artifact.ts';
