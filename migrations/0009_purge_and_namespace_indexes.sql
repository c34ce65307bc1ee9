CREATE INDEX `events_by_end` ON `events` (`end_time`);--> statement-breakpoint
CREATE INDEX `events_by_namespace_end` ON `events` (`namespace`,`end_time`);--> statement-breakpoint
CREATE INDEX `events_by_namespace_status_start` ON `events` (`namespace`,`status`,`start_time`,`request_id`);