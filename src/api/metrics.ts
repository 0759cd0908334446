// Prometheus metrics for the control plane; protocol engines add their own to the same registry.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();
  readonly httpRequests = new Counter({
    name: 'warden_http_requests_total',
    help: 'API requests by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  readonly httpDuration = new Histogram({
    name: 'warden_http_request_duration_seconds',
    help: 'API request latency',
    labelNames: ['method', 'route'] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [this.registry],
  });
  readonly authRefusals = new Counter({
    name: 'warden_auth_refusals_total',
    help: 'Refused credentials by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly auditRecords = new Counter({
    name: 'warden_audit_records_total',
    help: 'Audit records written by this process',
    registers: [this.registry],
  });
  readonly auditQueue = new Gauge({
    name: 'warden_audit_queue',
    help: 'Audit events waiting to be written',
    registers: [this.registry],
  });

  readonly recorderQueue = new Gauge({
    name: 'warden_recorder_queue',
    help: 'Session statement events waiting to be written',
    registers: [this.registry],
  });
  readonly recorderDropped = new Counter({
    name: 'warden_recorder_dropped_total',
    help: 'Session statement events dropped because the recorder queue was full',
    registers: [this.registry],
  });
  readonly recorderWriteFailures = new Counter({
    name: 'warden_recorder_write_failures_total',
    help: 'Session recording writes the store refused (each batch is retried)',
    registers: [this.registry],
  });
  readonly reviewNotifications = new Counter({
    name: 'warden_review_notifications_total',
    help: 'Review notifications by notifier kind and outcome (sent, failed after retries, dropped unsent)',
    labelNames: ['kind', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly reviewNotificationAttempts = new Counter({
    name: 'warden_review_notification_attempts_total',
    help: 'HTTP requests made to deliver review notifications, retries included',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'warden_' });
  }
}
