CREATE TABLE `event_tags` (
	`request_id` text NOT NULL,
	`namespace` text NOT NULL,
	`function_name` text NOT NULL,
	`key` text NOT NULL,
	`value` text NOT NULL,
	`start_time` integer NOT NULL,
	PRIMARY KEY(`request_id`, `key`)
);
--> statement-breakpoint
CREATE INDEX `event_tags_by_function_tag` ON `event_tags` (`namespace`,`function_name`,`key`,`value`,`start_time`,`request_id`);--> statement-breakpoint
CREATE INDEX `event_tags_by_namespace_tag` ON `event_tags` (`namespace`,`key`,`value`,`start_time`);--> statement-breakpoint
CREATE INDEX `event_tags_by_start` ON `event_tags` (`start_time`);--> statement-breakpoint
CREATE TABLE `namespace_settings` (
	`namespace` text PRIMARY KEY NOT NULL,
	`retention_hours` integer DEFAULT 72 NOT NULL,
	`archive_enabled` integer DEFAULT false NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
ALTER TABLE `events` ADD `tags` text;--> statement-breakpoint
ALTER TABLE `events` ADD `progress_percent` real;--> statement-breakpoint
ALTER TABLE `events` ADD `progress_message` text;--> statement-breakpoint
ALTER TABLE `events` ADD `progress_at` integer;