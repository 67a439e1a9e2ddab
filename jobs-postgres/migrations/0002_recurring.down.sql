DROP TABLE __SCHEMA__.recurring_jobs;
