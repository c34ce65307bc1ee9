CREATE TABLE `events` (
	`request_id` text PRIMARY KEY NOT NULL,
	`namespace` text NOT NULL,
	`function_name` text NOT NULL,
	`qualifier` text NOT NULL,
	`invoke_type` text NOT NULL,
	`status` text NOT NULL,
	`status_code` integer,
	`phase` text NOT NULL,
	`start_time` integer NOT NULL,
	`end_time` integer,
	`duration_ms` integer,
	`version` integer NOT NULL,
	`updated_at` integer DEFAULT (unixepoch() * 1000) NOT NULL
);
--> statement-breakpoint
CREATE INDEX `events_by_function_start` ON `events` (`namespace`,`function_name`,`start_time`);--> statement-breakpoint
CREATE INDEX `events_by_function_end` ON `events` (`namespace`,`function_name`,`end_time`);--> statement-breakpoint
CREATE INDEX `events_by_function_status_start` ON `events` (`namespace`,`function_name`,`status`,`start_time`);--> statement-breakpoint
CREATE INDEX `events_by_start` ON `events` (`start_time`);--> statement-breakpoint
CREATE TABLE `functions` (
	`namespace` text NOT NULL,
	`name` text NOT NULL,
	`runtime` text NOT NULL,
	`handler` text NOT NULL,
	`code_sha256` text NOT NULL,
	`code_size` integer NOT NULL,
	`code_key` text NOT NULL,
	`timeout_seconds` integer NOT NULL,
	`memory_mb` integer NOT NULL,
	`environment` text DEFAULT '{}' NOT NULL,
	`description` text DEFAULT '' NOT NULL,
	`async_run_enable` integer NOT NULL,
	`max_concurrency` integer NOT NULL,
	`qps_limit` integer NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	PRIMARY KEY(`namespace`, `name`)
);
