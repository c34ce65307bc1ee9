DROP INDEX `events_by_function_start`;--> statement-breakpoint
DROP INDEX `events_by_function_end`;--> statement-breakpoint
DROP INDEX `events_by_function_status_start`;--> statement-breakpoint
CREATE INDEX `events_by_function_start_id` ON `events` (`namespace`,`function_name`,`start_time`,`request_id`);--> statement-breakpoint
CREATE INDEX `events_by_function_end_id` ON `events` (`namespace`,`function_name`,`end_time`,`request_id`);--> statement-breakpoint
CREATE INDEX `events_by_function_status_covering` ON `events` (`namespace`,`function_name`,`status`,`start_time`,`request_id`,`invoke_type`,`qualifier`,`end_time`);