/** An `alerts.triggered` / `alerts.resolved` event as written to the outbox. */
export interface AlertEvent {
  id: string;
  account_id: string;
  rule_id: string;
  event_type: 'alerts.triggered' | 'alerts.resolved';
  payload: string;
  created_at: string;
}

export interface AlertEventsRepository {
  /** Events in the order they were written, optionally of one account. */
  list(accountId?: string): Promise<AlertEvent[]>;
}
