DROP TABLE sms_registrations;
DROP TABLE sms_reports;
DROP TABLE sms_messages;
