/**
 * Reverse proxy: forwards traffic to one backend correctly, defends it (limits, rate limits,
 * rules) and traces every request.
 *
 * @module
 */
export {};
