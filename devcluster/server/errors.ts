/**
 * `metav1.Status` errors. Every failure the server answers is an {@link ApiError} rendered as a Status body.
 */
import type { Json, ResourceType } from "./types.js";

/** A cause inside `details.causes`. */
export interface StatusCause {
  reason?: string;
  message?: string;
  field?: string;
}

/** Details of a Status (name, group, kind — plural resource or Kind depending on the reason — and causes). */
export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
}

/** An error that the HTTP layer turns into a `metav1.Status` response with `code`. */
export class ApiError extends Error {
  /**
   * @param code HTTP status code (404, 409, 422, …)
   * @param reason metav1 StatusReason (`NotFound`, `Conflict`, `Invalid`, …)
   * @param message the Status message
   * @param details optional Status details
   */
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: StatusDetails,
  ) {
    super(message);
  }

  /** The `metav1.Status` body for this error. */
  toStatus(): Json {
    const s: Json = { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message: this.message, reason: this.reason };
    if (this.details) s.details = this.details;
    s.code = this.code;
    return s;
  }
}

/** `tasks.example.com` / `deployments.apps` / `pods`: how upstream names a resource in messages. */
export function qualifiedResource(rt: Pick<ResourceType, "group" | "resource">): string {
  return rt.group ? `${rt.resource}.${rt.group}` : rt.resource;
}

/** 404 `tasks.example.com "x" not found`. */
export function notFound(rt: Pick<ResourceType, "group" | "resource">, name: string): ApiError {
  return new ApiError(404, "NotFound", `${qualifiedResource(rt)} "${name}" not found`, { name, group: rt.group, kind: rt.resource });
}

/** 404 for an unknown URL: `the server could not find the requested resource`. */
export function notFoundPath(): ApiError {
  return new ApiError(404, "NotFound", "the server could not find the requested resource", {});
}

/** 409 `tasks.example.com "x" already exists`. */
export function alreadyExists(rt: Pick<ResourceType, "group" | "resource">, name: string): ApiError {
  return new ApiError(409, "AlreadyExists", `${qualifiedResource(rt)} "${name}" already exists`, { name, group: rt.group, kind: rt.resource });
}

/** 409 Conflict for a stale resourceVersion. */
export function conflict(rt: Pick<ResourceType, "group" | "resource">, name: string): ApiError {
  return new ApiError(
    409,
    "Conflict",
    `Operation cannot be fulfilled on ${qualifiedResource(rt)} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
    { name, group: rt.group, kind: rt.resource },
  );
}

/** 400 BadRequest with a message. */
export function badRequest(message: string): ApiError {
  return new ApiError(400, "BadRequest", message);
}

/** 415 for a body media type the endpoint does not take. */
export function unsupportedMediaType(accepted: string[]): ApiError {
  return new ApiError(415, "UnsupportedMediaType", `the body of the request was in an unknown format - accepted media types include: ${accepted.join(", ")}`);
}

/** 405 MethodNotAllowed. */
export function methodNotAllowed(method: string): ApiError {
  return new ApiError(405, "MethodNotAllowed", `the server does not allow this method on the requested resource`, { causes: [{ message: method }] });
}

/**
 * 422 Invalid: `Task.example.com "x" is invalid: spec.image: Required value`.
 * @param kind the Kind (not the plural), as upstream puts it in details for Invalid
 */
export function invalid(group: string, kind: string, name: string, causes: Required<Pick<StatusCause, "reason" | "message" | "field">>[]): ApiError {
  const gk = group ? `${kind}.${group}` : kind;
  const parts = causes.map((c) => (c.field ? `${c.field}: ${c.message}` : c.message));
  const msg = parts.length === 1 ? `${gk} "${name}" is invalid: ${parts[0]}` : `${gk} "${name}" is invalid: [${parts.join(", ")}]`;
  return new ApiError(422, "Invalid", msg, { name, group, kind, causes });
}

/** 410 Expired `too old resource version: N (M)`. */
export function expired(requested: string, oldest: number): ApiError {
  return new ApiError(410, "Expired", `too old resource version: ${requested} (${oldest})`);
}
