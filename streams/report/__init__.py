"""`acw report`: pictures and tables of ACW for contact-center managers, from replay output or the topics."""
