-- One database per service, owned by the compose file's POSTGRES_USER. The postgres image runs
-- this once, when its data volume is empty; on an existing volume create them by hand.
CREATE DATABASE prs_gateway;
CREATE DATABASE prs_deal_workflow;
CREATE DATABASE prs_file_processor;
CREATE DATABASE prs_notifier;
CREATE DATABASE prs_scheduler;
