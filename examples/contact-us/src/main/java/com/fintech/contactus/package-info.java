/** The contact-us service: messages sent through the website's contact form. */
package com.fintech.contactus;
