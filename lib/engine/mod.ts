/** Public entry point of the session engine. */
export * from "./segment.ts";
export * from "./config.ts";
export * from "./stats.ts";
export * from "./engine.ts";
