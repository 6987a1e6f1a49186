/**
 * The frames of protocol v1 (protocol/PROTOCOL.md, "Frame types"), as TypeScript types.
 *
 * Names follow the protocol's words: a request type's name is its `type` in PascalCase.
 * `scripts/check-vectors.mjs` assigns every frame of protocol/vectors.json to `ClientFrame` or
 * `ServerFrame`, so a field the hub adds or renames breaks the build instead of drifting.
 */

/** A UUID string, lower case with hyphens. */
export type Uuid = string;
/** Milliseconds since the epoch. */
export type Time = number;
/** An event's place in its ticket's stream: 1, 2, 3, ... */
export type Seq = number;
/** A request id: chosen by the client, unique per socket, below 2^53. */
export type RequestId = number;

// ---------------------------------------------------------------------------------------------
// Shared values

export type TicketStatus = "open" | "assigned" | "resolved";

export interface Ticket {
  id: Uuid;
  user_id: Uuid;
  subject: string;
  status: TicketStatus;
  agent_id: Uuid | null;
  created_at: Time;
  updated_at: Time;
  /** Only while `open`: when the ticket entered the queue. */
  queued_at?: Time;
  last_seq: Seq;
}

export type Participant =
  | { kind: "user"; id: Uuid }
  | { kind: "agent"; id: Uuid }
  | { kind: "system" };

export interface Attachment {
  id: Uuid;
  kind: "image" | "file";
  media_type: string;
  size: number;
  name: string;
  width?: number;
  height?: number;
  url: string;
  thumbnail?: string;
}

export type EventKind = "opened" | "message" | "claimed" | "transferred" | "resolved" | "reopened";

/** One entry of a ticket's stream. Optional fields are absent, never `null`. */
export interface TicketEvent {
  ticket_id: Uuid;
  seq: Seq;
  kind: EventKind;
  author: Participant;
  body?: string;
  client_msg_id?: string;
  agent_id?: Uuid;
  attachments?: Attachment[];
  at: Time;
}

export type AgentStatus = "available" | "busy" | "away";

export interface Agent {
  id: Uuid;
  name: string;
  status: AgentStatus;
  capacity: number;
  online: boolean;
  supervisor: boolean;
}

export interface Mark {
  participant: Participant;
  delivered_seq: Seq;
  read_seq: Seq;
}

export interface Label {
  id: Uuid;
  name: string;
  color: string;
}

export interface TicketLabels {
  ticket_id: Uuid;
  label_ids: Uuid[];
}

export interface CannedReply {
  id: Uuid;
  title: string;
  body: string;
}

export interface Note {
  id: Uuid;
  ticket_id: Uuid;
  agent_id: Uuid;
  body: string;
  mentions: Uuid[];
  client_msg_id: string;
  at: Time;
}

export interface Rating {
  ticket_id: Uuid;
  resolution_seq: Seq;
  agent_id: Uuid;
  score: number;
  comment: string | null;
  rated_at: Time;
}

export interface RatingRequest {
  ticket_id: Uuid;
  resolution_seq: Seq;
  expires_at: Time;
}

export interface Profile {
  user_id: Uuid;
  name: string | null;
  image: string | null;
  online: boolean;
  last_seen_at?: Time;
}

export interface DeviceReport {
  os: string;
  os_version: string | null;
  model: string | null;
  manufacturer: string | null;
  app_version: string | null;
  locale: string | null;
  reported_at: Time;
}

export interface Device {
  id: Uuid;
  name: string | null;
  created_at: Time;
  last_seen_at: Time;
  live_sessions: number;
  current: boolean;
}

export interface SearchMatch {
  ticket: Ticket;
  seq: Seq;
  at: Time;
  snippet: { text: string; match: boolean }[];
  matched: string;
}

export interface Consent {
  analytics: boolean;
  analytics_changed_at: Time | null;
  personalisation: boolean;
  personalisation_changed_at: Time | null;
  sms_reminders: boolean;
  sms_reminders_changed_at: Time | null;
}

export interface Purchase {
  id: Uuid;
  reference: string;
  product: string;
  kind: string;
  amount_minor: number;
  currency: string;
  purchased_at: Time;
  expires_at: Time | null;
  status: string;
  active: boolean;
}

/** Any JSON value: the settings document is the app's own. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface DeviceInfo {
  os: string;
  os_version?: string | null;
  model?: string | null;
  manufacturer?: string | null;
  app_version?: string | null;
  locale?: string | null;
  memory_mb?: number | null;
  screen_width?: number | null;
  screen_height?: number | null;
}

export interface ViewEvent {
  at: Time;
  kind: "screen" | "action";
  screen: string;
  target?: string | null;
  duration_ms?: number | null;
}

// ---------------------------------------------------------------------------------------------
// Requests (client → hub). `id` is added by the client when it sends.

/** A request body: the fields of one request type, without `id`. */
export type Request =
  | { type: "auth"; token: string }
  | { type: "ping" }
  | { type: "session.refresh" }
  | { type: "session.sign_out" }
  | { type: "me" }
  | {
      type: "ticket.open";
      subject: string;
      body?: string | null;
      attachments?: Uuid[] | null;
      client_msg_id: string;
    }
  | { type: "ticket.list"; status?: TicketStatus | null; mine?: boolean; label_id?: Uuid | null }
  /** `after_seq` is a number or absent, never `null` (CLIENTS.md section 11). */
  | { type: "ticket.subscribe"; ticket_id: Uuid; after_seq?: Seq }
  | { type: "ticket.unsubscribe"; ticket_id: Uuid }
  | {
      type: "ticket.history";
      ticket_id: Uuid;
      before_seq?: Seq | null;
      after_seq?: Seq | null;
      limit?: number | null;
    }
  | {
      type: "ticket.send";
      ticket_id: Uuid;
      client_msg_id: string;
      body?: string | null;
      attachments?: Uuid[] | null;
    }
  | { type: "ticket.claim"; ticket_id: Uuid }
  | { type: "ticket.transfer"; ticket_id: Uuid; agent_id: Uuid }
  | { type: "ticket.resolve"; ticket_id: Uuid }
  | { type: "ticket.delivered"; ticket_id: Uuid; seq: Seq }
  | { type: "ticket.read"; ticket_id: Uuid; seq: Seq }
  | { type: "ticket.typing"; ticket_id: Uuid }
  | { type: "queue.subscribe" }
  | { type: "agent.status"; status: AgentStatus; capacity?: number | null }
  | { type: "agent.list" }
  | { type: "agent.get"; agent_id: Uuid }
  | { type: "canned.list" }
  | { type: "canned.add"; title: string; body: string }
  | { type: "canned.delete"; reply_id: Uuid }
  | {
      type: "note.add";
      ticket_id: Uuid;
      client_msg_id: string;
      body: string;
      mentions?: Uuid[] | null;
    }
  | { type: "note.list"; ticket_id: Uuid; before_id?: Uuid | null; limit?: number | null }
  | {
      type: "rating.submit";
      ticket_id: Uuid;
      resolution_seq: Seq;
      score: number;
      comment?: string | null;
    }
  | { type: "rating.pending" }
  | { type: "rating.list"; ticket_id: Uuid }
  | {
      type: "ticket.search";
      query: string;
      status?: TicketStatus | null;
      agent_id?: Uuid | null;
      label_id?: Uuid | null;
      from?: Time | null;
      to?: Time | null;
      offset?: number | null;
      limit?: number | null;
    }
  | { type: "label.list" }
  | { type: "label.create"; name: string; color: string }
  | { type: "label.update"; label_id: Uuid; name?: string | null; color?: string | null }
  | { type: "label.delete"; label_id: Uuid }
  | { type: "ticket.label"; ticket_id: Uuid; label_id: Uuid; on: boolean }
  | { type: "profile.get"; user_id: Uuid }
  | { type: "profile.update"; name?: string | null; hide_last_seen?: boolean | null }
  | { type: "customer.get"; user_id: Uuid }
  | { type: "device.list" }
  | { type: "device.sign_out"; device_id: Uuid }
  | { type: "telemetry.device"; device: DeviceInfo }
  | { type: "telemetry.views"; events: ViewEvent[] }
  | { type: "settings.get" }
  | { type: "settings.put"; settings: { [key: string]: Json } }
  | { type: "consent.get" }
  | {
      type: "consent.set";
      analytics?: boolean | null;
      personalisation?: boolean | null;
      sms_reminders?: boolean | null;
    }
  | { type: "purchase.list" }
  | {
      type: "push.register";
      provider: "webpush";
      endpoint: string;
      keys: { p256dh: string; auth: string };
      preview?: boolean | null;
      language?: "fa" | "en" | null;
    }
  | {
      type: "push.register";
      provider: "fcm" | "apns";
      token: string;
      environment?: "production" | "sandbox" | null;
      preview?: boolean | null;
      language?: "fa" | "en" | null;
    }
  | { type: "push.unregister" };

/** The `type` of every request. */
export type RequestType = Request["type"];

/** A request frame as it travels: the request with its `id`. */
export type ClientFrame = Request & { id: RequestId };

// ---------------------------------------------------------------------------------------------
// Replies (hub → client), each with the request's `id`.

/** A reply body, without `id`. */
export type ReplyBody =
  | { type: "auth.ok"; user_id: Uuid; device_id: Uuid; session_expires_at: Time }
  | { type: "auth.agent.ok"; agent: Agent; session_expires_at: Time }
  | { type: "ping.ok"; server_time: Time }
  | { type: "session.refresh.ok"; token: string; expires_at: Time }
  | { type: "session.sign_out.ok" }
  | { type: "me.ok"; user_id: Uuid; phone: string; registered_at: Time }
  | { type: "ticket.open.ok"; ticket: Ticket }
  | { type: "ticket.list.ok"; tickets: Ticket[]; labels?: TicketLabels[] }
  | { type: "ticket.search.ok"; results: SearchMatch[]; more: boolean }
  | { type: "label.list.ok"; labels: Label[] }
  | { type: "ticket.label.ok"; labels: TicketLabels }
  | { type: "ticket.subscribe.ok"; ticket: Ticket; marks: Mark[] }
  | { type: "ticket.history.ok"; ticket_id: Uuid; events: TicketEvent[]; more: boolean }
  | { type: "ticket.send.ok"; ticket_id: Uuid; seq: Seq; duplicate: boolean }
  | { type: "ticket.update.ok"; ticket: Ticket }
  | { type: "queue.subscribe.ok"; tickets: Ticket[] }
  | { type: "agent.status.ok"; agent: Agent }
  | { type: "agent.list.ok"; agents: Agent[] }
  | { type: "agent.get.ok"; agent: Agent }
  | { type: "canned.list.ok"; replies: CannedReply[] }
  | { type: "note.add.ok"; note: Note }
  | { type: "note.list.ok"; ticket_id: Uuid; notes: Note[]; more: boolean }
  | { type: "rating.submit.ok"; rating: Rating }
  | { type: "rating.pending.ok"; requests: RatingRequest[] }
  | { type: "rating.list.ok"; ticket_id: Uuid; ratings: Rating[] }
  | { type: "profile.ok"; profile: Profile }
  | {
      type: "customer.get.ok";
      customer: { profile: Profile; device?: DeviceReport; tickets: Ticket[] };
    }
  | { type: "device.list.ok"; devices: Device[] }
  | { type: "settings.ok"; settings: { [key: string]: Json }; updated_at: Time | null }
  | { type: "consent.ok"; consent: Consent }
  | { type: "purchase.list.ok"; purchases: Purchase[] }
  | {
      type: "push.register.ok";
      registration: { provider: string; preview: boolean; language: string; updated_at: Time };
    }
  | { type: "ok" };

export type Reply = ReplyBody & { id: RequestId };

/** Every error code of PROTOCOL.md "Error codes". Switch on it, never on `message`. */
export type ErrorCode =
  | "bad_request"
  | "unknown_type"
  | "too_large"
  | "invalid_utf8"
  | "unauthenticated"
  | "unauthorized"
  | "already_authenticated"
  | "rate_limited"
  | "invalid_phone"
  | "country_not_allowed"
  | "code_expired"
  | "code_invalid"
  | "too_many_attempts"
  | "sms_budget_exhausted"
  | "sms_unavailable"
  | "not_found"
  | "forbidden"
  | "method_not_allowed"
  | "conflict"
  | "wrong_state"
  | "phone_taken"
  | "confirmation_invalid"
  | "bad_image"
  | "empty_body"
  | "overloaded"
  | "consent_required"
  | "bad_signature"
  | "stale_signature"
  | "unsupported_media"
  | "upload_limit"
  | "precondition_failed"
  | "unavailable"
  | "internal";

/** An `error` frame: `id` is `null` when the hub could not read the request's id. */
export interface ErrorFrame {
  type: "error";
  id: RequestId | null;
  code: ErrorCode;
  message: string;
  retry_after_ms?: number;
}

// ---------------------------------------------------------------------------------------------
// Events (hub → client, no `id` key)

export type RevokeReason =
  | "signed_out"
  | "agent_disabled"
  | "replaced"
  | "signed_in_elsewhere"
  | "account_deleted";

export type Event =
  | { type: "session.expiring"; expires_at: Time }
  | { type: "session.expired" }
  /** Unknown reasons are a revocation too (CLIENTS.md section 3). */
  | { type: "session.revoked"; reason: RevokeReason | (string & {}) }
  | { type: "announcement"; announcement_id: Uuid; text: string; sent_at: Time }
  | { type: "ticket.event"; event: TicketEvent }
  | { type: "ticket.updated"; ticket: Ticket }
  | {
      type: "ticket.receipt";
      ticket_id: Uuid;
      participant: Participant;
      delivered_seq: Seq;
      read_seq: Seq;
    }
  | { type: "labels.updated"; labels: Label[] }
  | { type: "ticket.labels"; labels: TicketLabels }
  | { type: "rating.request"; ticket_id: Uuid; resolution_seq: Seq; expires_at: Time }
  | { type: "ticket.rated"; rating: Rating }
  | { type: "ticket.note"; note: Note }
  | { type: "ticket.deleted"; ticket_id: Uuid }
  | { type: "ticket.typing"; ticket_id: Uuid; participant: Participant }
  | { type: "purchase.updated"; purchase: Purchase }
  | {
      type: "ticket.queue";
      ticket_id: Uuid;
      position: number;
      estimated_wait_ms: number | null;
    }
  | { type: "profile.updated"; profile: Profile }
  | { type: "settings.updated"; settings: { [key: string]: Json }; updated_at: Time | null }
  | { type: "consent.updated"; consent: Consent }
  | { type: "presence"; participant: Participant; online: boolean; last_seen_at?: Time };

export type EventType = Event["type"];

/** Every frame the hub sends. */
export type ServerFrame = Reply | ErrorFrame | Event;

/** The reply type each request is answered with on success. */
export interface ReplyTypeOf {
  auth: "auth.ok" | "auth.agent.ok";
  ping: "ping.ok";
  "session.refresh": "session.refresh.ok";
  "session.sign_out": "session.sign_out.ok";
  me: "me.ok";
  "ticket.open": "ticket.open.ok";
  "ticket.list": "ticket.list.ok";
  "ticket.subscribe": "ticket.subscribe.ok";
  "ticket.unsubscribe": "ok";
  "ticket.history": "ticket.history.ok";
  "ticket.send": "ticket.send.ok";
  "ticket.claim": "ticket.update.ok";
  "ticket.transfer": "ticket.update.ok";
  "ticket.resolve": "ticket.update.ok";
  "ticket.delivered": "ok";
  "ticket.read": "ok";
  "ticket.typing": "ok";
  "queue.subscribe": "queue.subscribe.ok";
  "agent.status": "agent.status.ok";
  "agent.list": "agent.list.ok";
  "agent.get": "agent.get.ok";
  "canned.list": "canned.list.ok";
  "canned.add": "canned.list.ok";
  "canned.delete": "ok";
  "note.add": "note.add.ok";
  "note.list": "note.list.ok";
  "rating.submit": "rating.submit.ok";
  "rating.pending": "rating.pending.ok";
  "rating.list": "rating.list.ok";
  "ticket.search": "ticket.search.ok";
  "label.list": "label.list.ok";
  "label.create": "label.list.ok";
  "label.update": "label.list.ok";
  "label.delete": "label.list.ok";
  "ticket.label": "ticket.label.ok";
  "profile.get": "profile.ok";
  "profile.update": "profile.ok";
  "customer.get": "customer.get.ok";
  "device.list": "device.list.ok";
  "device.sign_out": "ok";
  "telemetry.device": "ok";
  "telemetry.views": "ok";
  "settings.get": "settings.ok";
  "settings.put": "settings.ok";
  "consent.get": "consent.ok";
  "consent.set": "consent.ok";
  "purchase.list": "purchase.list.ok";
  "push.register": "push.register.ok";
  "push.unregister": "ok";
}

/** The reply a request of type `T` gets on success. */
export type ReplyTo<T extends RequestType> = Extract<Reply, { type: ReplyTypeOf[T] }>;

/** Whether a decoded frame is a reply or an error (it has an `id` key, even `null`). */
export function isReplyOrError(frame: ServerFrame): frame is Reply | ErrorFrame {
  return Object.prototype.hasOwnProperty.call(frame, "id");
}
