/**
 * Integer flag parsing for commander: a bad value is refused before anything starts, and commander's
 * message names the flag: `error: option '--port <n>' argument '99999' is invalid. must be an integer from 0 to 65535`.
 */
import { InvalidArgumentError } from "commander";

/**
 * A commander argument parser accepting whole numbers in [min, max].
 * @returns a parser for `.option(flags, description, parser, default)`
 */
export function intInRange(min: number, max: number): (value: string) => number {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === "" || !Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`must be an integer from ${min} to ${max}`);
    return n;
  };
}
