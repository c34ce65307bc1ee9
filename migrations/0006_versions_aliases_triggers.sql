CREATE TABLE `function_aliases` (
	`namespace` text NOT NULL,
	`function_name` text NOT NULL,
	`name` text NOT NULL,
	`function_version` text NOT NULL,
	`additional_version` text,
	`additional_weight` real,
	`description` text DEFAULT '' NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	PRIMARY KEY(`namespace`, `function_name`, `name`)
);
--> statement-breakpoint
CREATE TABLE `function_versions` (
	`namespace` text NOT NULL,
	`function_name` text NOT NULL,
	`version` integer NOT NULL,
	`config` text NOT NULL,
	`description` text DEFAULT '' NOT NULL,
	`created_at` integer NOT NULL,
	PRIMARY KEY(`namespace`, `function_name`, `version`)
);
--> statement-breakpoint
CREATE TABLE `triggers` (
	`id` text PRIMARY KEY NOT NULL,
	`namespace` text NOT NULL,
	`function_name` text NOT NULL,
	`name` text NOT NULL,
	`type` text NOT NULL,
	`qualifier` text NOT NULL,
	`trigger_desc` text NOT NULL,
	`enabled` integer NOT NULL,
	`custom_argument` text DEFAULT '' NOT NULL,
	`description` text DEFAULT '' NOT NULL,
	`source` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `triggers_by_function_type_name` ON `triggers` (`namespace`,`function_name`,`type`,`name`);--> statement-breakpoint
CREATE INDEX `triggers_by_source` ON `triggers` (`type`,`source`);--> statement-breakpoint
ALTER TABLE `events` ADD `alias` text;