DROP TABLE __SCHEMA__.leader;
DROP TABLE __SCHEMA__.servers;
