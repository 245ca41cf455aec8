/** Public entry point of the session engine. */
export * from "./segment.ts";
export * from "./endpoint.ts";
export * from "./config.ts";
export * from "./stats.ts";
export * from "./engine.ts";
export { ACK, FIN, PSH, RST, SYN, URG } from "../wire/tcp.ts";
